"""REST API over the store: routers per kind, auth, admission (validation, quota)."""
