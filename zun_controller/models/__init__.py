"""Resource records: the envelope every kind shares, one module per kind, and the kind registry.

Imports nothing else of the package (pydantic only).
"""
