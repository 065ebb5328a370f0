"""REST API over the store: resource routes for every kind, watch, tokens and roles, admission
(validation by the models, quotas charged in the write's own transaction), logs and exec.

May import `models` and `store` (and FastAPI); never the engines' SDKs, nor drivers: logs and
exec reach engines through the `ContainerIO` port the composition root passes in.
"""
