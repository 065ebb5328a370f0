"""Drivers: the `Runtime` (one container on one host) and `Orchestrator` (one Application on one COE).

The only package that imports the Docker and Kubernetes SDKs. May import models; never the store
or the engine.
"""
