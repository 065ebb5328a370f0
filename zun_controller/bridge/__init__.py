"""kopf operator that mirrors Kubernetes custom resources into the store and status back."""
