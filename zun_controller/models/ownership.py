"""Who owns a record, for the writers that apply manifests (GitOps repositories, `zunctl apply`
apply-sets, the kubectl bridge): a writer never takes over a record it did not make.

The owner is read from the record's own metadata, first match wins:

1. a controller owner reference: the record belongs to that record (an Application's replica);
2. label `zun.openstack.org/gitops-repository: NAME`: the GitRepository NAME of its project;
3. label `zun.openstack.org/applyset: NAME`: the `zunctl apply --prune` apply-set NAME;
4. annotation `zun.openstack.org/source: kubernetes`: the kubectl bridge;
5. none of these: made by hand (REST API, `zunctl apply` without an apply-set).

A writer about to change a record whose owner is not itself reports a conflict naming the owner
and changes nothing, unless the manifest says to adopt: annotation
`zun.openstack.org/adopt: "true"` (or zunctl's `--force-conflicts`). Adopting rewrites the
markers, so the record is the adopter's from then on (and its prune may delete it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zun_controller.models.base import GROUP, ObjectMeta

GITOPS_REPOSITORY = f"{GROUP}/gitops-repository"
APPLYSET = f"{GROUP}/applyset"
SOURCE = f"{GROUP}/source"
FROM_KUBERNETES = "kubernetes"
ADOPT = f"{GROUP}/adopt"


@dataclass(frozen=True)
class Writer:
    """One writer of records: `kind` is `GitRepository`, `apply-set`, `bridge`, `hand`, or the
    kind of an owning record; `name` says which one (empty for the bridge and by hand)."""

    kind: str
    name: str = ""
    project: str | None = None

    def __str__(self) -> str:
        if self.kind == "hand":
            return "no writer (made by hand through the API)"
        if self.kind == "bridge":
            return "the kubectl bridge (a custom resource)"
        where = f"{self.project}/{self.name}" if self.project else self.name
        return f"{self.kind} {where}"


BY_HAND = Writer("hand")
BRIDGE = Writer("bridge")


def gitops(name: str, project: str | None) -> Writer:
    return Writer("GitRepository", name, project)


def applyset(name: str) -> Writer:
    return Writer("apply-set", name)


def owner_of(meta: ObjectMeta) -> Writer:
    """The writer that owns a record, by the rule above."""
    controller = next((r for r in meta.owner_references if r.controller), None)
    if controller is not None:
        return Writer(controller.kind, controller.name, meta.project)
    if meta.labels.get(GITOPS_REPOSITORY):
        return gitops(meta.labels[GITOPS_REPOSITORY], meta.project)
    if meta.labels.get(APPLYSET):
        return applyset(meta.labels[APPLYSET])
    if meta.annotations.get(SOURCE) == FROM_KUBERNETES:
        return BRIDGE
    return BY_HAND


def adopts(annotations: Mapping[str, str]) -> bool:
    """Whether a manifest asks to take over a record another writer owns."""
    return annotations.get(ADOPT, "").strip().lower() == "true"


def conflict(what: str, owner: Writer, how: str = f'annotation {ADOPT}: "true"') -> str:
    """The one-line report of a refused take-over: what, who owns it, how to adopt."""
    return f"{what}: owned by {owner}; not changed ({how} adopts it)"
