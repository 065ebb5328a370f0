"""One reconciler per kind: compare desired with observed and act on the difference.

May import models, store, engine and drivers.
"""
