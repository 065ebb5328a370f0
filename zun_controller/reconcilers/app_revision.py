"""Revisions of an Application and the rollback rule, as pure functions.

- The effective template is spec.template with the app-level healthcheck given to every
  container that has none; its revision is a short hash of it. Replicas, service and
  strategy are not part of it: scaling is not a new revision.
- The hash rule: the revision hashes what the user set, the canonical JSON (sorted keys,
  camelCase) of the template dumped without its fields at their default value, so a field
  the controller gains with a default names no new revision (its default must mean what the
  controller did before). An Application made before the rule has revisions named by the
  frozen hash of `legacy_hash`; a template whose frozen revision is one status knows
  (current, previous or failed) keeps that name, so an upgrade rolls nothing.
- The target is the revision to run. Normally it is the spec's. With autoRollback on, a spec
  whose revision is `status.failedRevision` keeps running the revision before it, until the
  template changes (a new revision is tried again).
- `roll_back` records the failure: failedRevision, current <- the previous revision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from zun_controller.models.application import Application, AppTemplate, Revision
from zun_controller.reconcilers.legacy_hash import legacy_revision

#: Revisions whose templates are kept in status.history (current and previous).
HISTORY = 2


def effective_template(app: Application) -> AppTemplate:
    template = app.spec.template.model_copy(deep=True)
    if app.spec.healthcheck is not None:
        for container in template.containers:
            if container.healthcheck is None:
                container.healthcheck = app.spec.healthcheck.model_copy(deep=True)
    return template


def revision_of(template: AppTemplate) -> str:
    """The hash rule's revision of a template (module docstring): 10 hex digits."""
    dumped = template.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    raw = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:10]


def revision_for(app: Application, template: AppTemplate) -> str:
    """The name of `template`'s revision for this Application: its frozen name when status
    knows the template by it, else `revision_of`."""
    status = app.status
    known = {status.current_revision, status.previous_revision, status.failed_revision}
    legacy = legacy_revision(template)
    if legacy is not None and legacy in known:
        return legacy
    return revision_of(template)


@dataclass(frozen=True)
class Target:
    revision: str
    template: AppTemplate
    #: True while the spec's revision failed and the previous one runs instead
    held_back: bool


def _template_of(app: Application, revision: str | None) -> AppTemplate | None:
    return next((r.template for r in app.status.history if r.name == revision), None)


def target(app: Application) -> Target:
    """What to run now, and record it in status (current/previous revision, history)."""
    wanted_template = effective_template(app)
    wanted = revision_for(app, wanted_template)
    status = app.status
    if status.failed_revision is not None and status.failed_revision != wanted:
        status.failed_revision = None  # a new template: try again
    if status.failed_revision == wanted and app.spec.auto_rollback:
        current = _template_of(app, status.current_revision)
        if current is not None and status.current_revision != wanted:
            return Target(status.current_revision or "", current, held_back=True)
    _record(app, wanted, wanted_template)
    return Target(wanted, wanted_template, held_back=False)


def _record(app: Application, revision: str, template: AppTemplate) -> None:
    status = app.status
    if status.current_revision != revision:
        status.previous_revision = status.current_revision
        status.current_revision = revision
    keep = {status.current_revision, status.previous_revision}
    history = [r for r in status.history if r.name in keep and r.name != revision]
    history.append(Revision(name=revision, template=template))
    status.history = history[-HISTORY:]


def can_roll_back(app: Application, failed: str) -> bool:
    status = app.status
    return (
        app.spec.auto_rollback
        and status.current_revision == failed
        and status.previous_revision not in (None, failed)
        and _template_of(app, status.previous_revision) is not None
    )


def roll_back(app: Application, failed: str) -> Target:
    """Mark `failed` failed and make the previous revision current again."""
    status = app.status
    previous = status.previous_revision or ""
    template = _template_of(app, previous)
    assert template is not None
    status.failed_revision = failed
    status.current_revision, status.previous_revision = previous, failed
    return Target(previous, template, held_back=True)
