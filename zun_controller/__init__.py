"""Zun controller: a Kubernetes-style reconciliation controller that brings containers to OpenStack.

Layers (imports flow one way, enforced by import-linter in pyproject.toml):
models <- store <- engine <- reconcilers -> drivers; api, bridge, gitops and cli on top.
"""
