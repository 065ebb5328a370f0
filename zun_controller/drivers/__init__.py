"""Drivers: `Runtime` (one container on one host), `Orchestrator` (one Application on a COE).

The only package that imports the Docker and Kubernetes SDKs. May import models; never the store
or the engine.
"""
