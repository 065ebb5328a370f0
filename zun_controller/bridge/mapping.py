"""Custom resources <-> store records: what goes down (spec, labels) and what comes up (status).

A custom resource in namespace N is the record of the same kind and name in project N (kinds
that are cluster-scoped map to cluster-scoped custom resources). The record carries the
annotation `zun.openstack.org/source: kubernetes`: the bridge owns its spec and labels, and
nothing else writes them (see bridge/README.md, "One owner per record").
"""

from __future__ import annotations

from typing import Any

from zun_controller.models.base import API_VERSION, Resource, Scope
from zun_controller.models.ownership import FROM_KUBERNETES, SOURCE
from zun_controller.models.registry import by_kind, parse

__all__ = [
    "FROM_KUBERNETES",
    "SOURCE",
    "record_from_resource",
    "status_for_resource",
    "wants_change",
]
#: annotations of the custom resource that are Kubernetes' own, never copied down
_K8S_ANNOTATIONS = ("kubectl.kubernetes.io/", "kopf.zalando.org/")


def record_from_resource(kind: str, body: dict[str, Any]) -> Resource:
    """The record a custom resource asks for; `InvalidError` names the bad field."""
    meta = body.get("metadata", {})
    info = by_kind(kind).KIND
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(_K8S_ANNOTATIONS)
    }
    metadata: dict[str, Any] = {
        "name": meta.get("name"),
        "labels": dict(meta.get("labels") or {}),
        "annotations": {**annotations, SOURCE: FROM_KUBERNETES},
    }
    if info.scope is Scope.PROJECT:
        metadata["project"] = meta.get("namespace")
    return parse(
        {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": metadata,
            "spec": body.get("spec") or {},
        }
    )


def wants_change(current: Resource, desired: Resource) -> bool:
    """Whether the record differs from what the custom resource asks (spec, labels, notes)."""
    return (
        current.spec != desired.spec
        or current.metadata.labels != desired.metadata.labels
        or current.metadata.annotations != desired.metadata.annotations
    )


def status_for_resource(record: Resource) -> dict[str, Any]:
    dumped: dict[str, Any] = record.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped
