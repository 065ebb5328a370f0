"""GitOps: apply, diff and prune sets of manifests; repository sync."""
