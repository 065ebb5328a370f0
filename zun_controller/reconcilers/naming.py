"""Deterministic names and labels of what reconcilers create outside.

Names are deterministic so that a create repeated after a crash finds the first one (a
conflict, then adoption) instead of making a duplicate. Labels tie every outside object to
its record (`uid`), so a restarted controller adopts its own and removes its orphans, and
never touches what it did not make (`managed-by`).
"""

from __future__ import annotations

from zun_controller.models.base import (
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
    MANAGED_BY,
    Resource,
)

MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}


def labels_for(obj: Resource) -> dict[str, str]:
    labels = {
        **MANAGED,
        LABEL_KIND: obj.KIND.kind,
        LABEL_NAME: obj.name,
        LABEL_UID: obj.metadata.uid or "",
    }
    if obj.project:
        labels[LABEL_PROJECT] = obj.project
    return labels


def kind_selector(kind: str) -> dict[str, str]:
    return {**MANAGED, LABEL_KIND: kind}


def container_name(project: str, name: str) -> str:
    return f"zun-{project}-{name}"


def network_name(project: str, name: str) -> str:
    return f"zun-{project}-{name}"


def default_network(project: str) -> str:
    """Every project's containers share this network unless they name others; projects are
    isolated from each other because they are on different bridges."""
    return f"zun-{project}"


def default_network_labels(project: str) -> dict[str, str]:
    return {**MANAGED, LABEL_KIND: "Network", LABEL_PROJECT: project, LABEL_NAME: "default"}


def volume_name(project: str, name: str) -> str:
    return f"zun-{project}-{name}"
