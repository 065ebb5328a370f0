"""What `zunctl rollout` reads from and writes to an Application record, as pure functions.

- A rollout is complete when status has observed the spec's generation, the Progressing
  condition says `RevisionAvailable` for the current revision, and the replicas, updated,
  ready and available counts all equal spec.replicas. It failed when status records a failed
  revision with condition RolledBack True (the controller rolled back by itself) or the phase
  is Failed (a failed revision with autoRollback off, or a spec that cannot run).
- History is what status keeps: the templates of the current and previous revision
  (`status.history`, oldest first, numbered from 1) and the name of a failed one. Revisions
  carry no time; the creation time of a revision's live replica records (docker Clusters)
  stands in when there are any.
- Undo writes a kept revision's template back into spec.template (the app-level healthcheck
  the controller copied into its containers taken out again, so the revision's hash is the
  one it had). Restart sets the template label `RESTARTED_AT` to the time: a new revision,
  rolled out as any update is (the template has no annotations to put it in).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zun_controller.models.application import Application
from zun_controller.reconcilers.app_docker_status import LABEL_APP, LABEL_REVISION, LABEL_ROLE
from zun_controller.reconcilers.app_revision import effective_template, revision_for

RESTARTED_AT = "zunctl.zun.openstack.org/restartedAt"
REPLICA_SELECTOR = f"{LABEL_ROLE}=replica,{LABEL_APP}="


@dataclass(frozen=True)
class Progress:
    done: bool
    failed: str | None
    message: str


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), {})


def progress(obj: dict[str, Any]) -> Progress:
    """Where the rollout of `obj` (an Application as the API serves it) stands."""
    meta, spec, status = obj["metadata"], obj["spec"], obj.get("status") or {}
    name, want = meta["name"], int(spec.get("replicas", 1))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return Progress(
            False, None, f'Waiting for application "{name}" spec update to be observed...'
        )
    rolled_back = _condition(obj, "RolledBack")
    if status.get("failedRevision") and rolled_back.get("status") == "True":
        return Progress(False, f"rolled back: {rolled_back.get('message', '')}", "")
    progressing = _condition(obj, "Progressing")
    if status.get("phase") == "Failed":
        return Progress(False, f"failed: {progressing.get('message') or 'phase Failed'}", "")
    counts = [int(status.get(k) or 0) for k in ("replicas", "updatedReplicas", "readyReplicas")]
    available = int(status.get("availableReplicas") or 0)
    current = status.get("currentRevision")
    settled = (
        progressing.get("reason") == "RevisionAvailable"
        and progressing.get("message") == f"revision {current}"
    )
    if settled and counts == [want] * 3 and available == want:
        return Progress(True, None, f'application "{name}" successfully rolled out')
    return Progress(False, None, _waiting(name, want, counts, available, progressing))


def _waiting(
    name: str, want: int, counts: list[int], available: int, progressing: dict[str, Any]
) -> str:
    total, updated, _ready = counts
    head = f'Waiting for application "{name}" rollout to finish: '
    if updated < want:
        return head + f"{updated} out of {want} new replicas have been updated..."
    if total > updated:
        return head + f"{total - updated} old replicas are pending termination..."
    if available < want:
        return head + f"{available} of {want} updated replicas are available..."
    why = progressing.get("message") or progressing.get("reason") or "settling"
    return head + f"{why}..."


@dataclass(frozen=True)
class RevisionRow:
    number: int
    name: str
    status: str
    images: list[str]
    created: str | None
    template: dict[str, Any]

    def as_wire(self) -> dict[str, Any]:
        return {
            "revision": self.number,
            "name": self.name,
            "status": self.status,
            "images": self.images,
            "created": self.created,
            "template": self.template,
        }


def history(obj: dict[str, Any], replicas: list[dict[str, Any]]) -> list[RevisionRow]:
    """The revisions status keeps, oldest first; `replicas` are the Application's replica
    Container records (empty on engines that have none)."""
    status = obj.get("status") or {}
    marks = {
        status.get("currentRevision"): "current",
        status.get("previousRevision"): "previous",
    }
    marks[status.get("failedRevision")] = "failed"
    out = []
    for n, kept in enumerate(status.get("history") or [], start=1):
        name, template = kept["name"], kept["template"]
        images = [str(c.get("image")) for c in template.get("containers", [])]
        out.append(
            RevisionRow(n, name, marks.get(name, ""), images, _created(replicas, name), template)
        )
    return out


def _created(replicas: list[dict[str, Any]], revision: str) -> str | None:
    times = [
        str(r["metadata"].get("creationTimestamp"))
        for r in replicas
        if (r["metadata"].get("labels") or {}).get(LABEL_REVISION) == revision
        and r["metadata"].get("creationTimestamp")
    ]
    return min(times) if times else None


def spec_revision(obj: dict[str, Any]) -> str:
    """The revision spec.template names, as the controller names it."""
    app = Application.model_validate(obj)
    return revision_for(app, effective_template(app))


def pick_revision(rows: list[RevisionRow], obj: dict[str, Any], to: str | None) -> RevisionRow:
    """The revision an undo goes to: `to` (a number of `history`, or a revision name), else
    the one before the spec's (the running one, when the spec's is not it). ValueError says
    why there is none."""
    if to is not None:
        found = [r for r in rows if str(r.number) == to or r.name == to]
        if not found:
            known = ", ".join(f"{r.number} ({r.name})" for r in rows) or "none"
            raise ValueError(f"--to-revision: no revision {to!r}; kept: {known}")
        return found[0]
    wanted = spec_revision(obj)
    others = [r for r in rows if r.name != wanted]
    current = (obj.get("status") or {}).get("currentRevision")
    running = [r for r in others if r.name == current]
    if running or others:
        return (running or others)[-1]
    raise ValueError("no previous revision to go back to: status keeps only the current one")


def undone(obj: dict[str, Any], row: RevisionRow) -> dict[str, Any]:
    """`obj` with spec.template set to `row`'s template: the container healthchecks equal to
    spec.healthcheck (which the controller copied in) are left to it again."""
    out = copy.deepcopy(obj)
    template = copy.deepcopy(row.template)
    shared = out["spec"].get("healthcheck")
    if shared is not None:
        for container in template.get("containers", []):
            if container.get("healthcheck") == shared:
                del container["healthcheck"]
    out["spec"]["template"] = template
    return out


def restarted(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """`obj` with the template label `RESTARTED_AT` set to `now` (UTC, as a label value)."""
    out = copy.deepcopy(obj)
    labels = out["spec"]["template"].setdefault("labels", {})
    labels[RESTARTED_AT] = now.strftime("%Y%m%dT%H%M%SZ")
    return out
