"""Example records for the OpenAPI document: a spec each kind takes, shown as the example of
its create body (`tests/unit/test_api_openapi.py` parses each through the models)."""

from __future__ import annotations

from typing import Any

from zun_controller.models.base import API_VERSION

_CONFIG = '{"auths": {"registry.example:5000": {"username": "u", "password": "p"}}}'
_WHEN = "2026-01-01T00:00:00Z"
EXAMPLE_SPECS: dict[str, dict[str, Any]] = {
    "Container": {"image": "zun-test/httpd:v1", "ports": [{"containerPort": 8080}]},
    "Host": {"endpoint": "tcp://127.0.0.1:2375"},
    "Network": {},
    "Volume": {},
    "Application": {
        "cluster": "local",
        "replicas": 2,
        "template": {"containers": [{"name": "web", "image": "zun-test/httpd:v1"}]},
    },
    "Cluster": {"type": "docker"},
    "Secret": {"data": {"kubeconfig": "apiVersion: v1\nkind: Config\n"}},
    "PullSecret": {"data": {".dockerconfigjson": _CONFIG}},
    "GitSecret": {"data": {"username": "git", "password": "a-token"}},
    "Project": {"description": "a tenant"},
    "Quota": {"limits": {"containers": 10}},
    "Event": {
        "involvedObject": {"kind": "Container", "name": "web"},
        "reason": "Started",
        "firstTimestamp": _WHEN,
        "lastTimestamp": _WHEN,
    },
    "GitRepository": {"url": "https://git.example/apps.git", "path": "apps"},
}


def example(kind: str) -> dict[str, Any]:
    """A record of `kind` a create takes (name `example`; the path gives the project)."""
    meta = {"name": "example"}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": EXAMPLE_SPECS[kind]}
