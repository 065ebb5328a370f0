"""Container runtimes: one container on one host (Docker engine)."""
