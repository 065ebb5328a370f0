"""Which columns `zunctl get` shows for a kind, as kubectl's printers choose them: NAME, the
kind's printer columns (models' `KindInfo.columns`), AGE; PROJECT first only across projects
(`-A`); LABELS with `-o wide`. Events and Applications have printers of their own: Events as
`kubectl get events` (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE, oldest first), Applications as
Deployments (READY as ready/desired, UP-TO-DATE, AVAILABLE, CLUSTER, ENDPOINT, AGE),
GitRepositories with their URL last (the one column a narrow terminal cuts) and a short
commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zun_controller.models.base import Resource, Scope

Cell = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell


def pick(obj: Any, path: str) -> Any:
    """The value at a JSON path such as `.status.phase` (None when missing)."""
    for part in path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def age(created: str | None, now: datetime | None = None) -> str:
    if not created:
        return "<unknown>"
    when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return span(int(((now or datetime.now(UTC)) - when).total_seconds()))


def span(secs: int) -> str:
    """Seconds as kubectl shows an age: `3d`, `5h`, `2m`, `40s`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def text(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _at(path: str) -> Cell:
    return lambda obj: text(pick(obj, path))


def _age(path: str, now: datetime | None) -> Cell:
    return lambda obj: age(pick(obj, path), now)


def _labels(obj: dict[str, Any]) -> str:
    labels = obj.get("metadata", {}).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _event_object(obj: dict[str, Any]) -> str:
    ref = pick(obj, ".spec.involvedObject") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _ready(obj: dict[str, Any]) -> str:
    return f"{pick(obj, '.status.readyReplicas') or 0}/{pick(obj, '.spec.replicas') or 0}"


def _endpoint(obj: dict[str, Any]) -> str:
    """The first endpoint, and how many more (kubectl's `+ N more...` of endpoints)."""
    found = [str(e) for e in pick(obj, ".status.endpoints") or []]
    if not found:
        return "<none>"
    return found[0] + (f" + {len(found) - 1} more..." if len(found) > 1 else "")


def _commit(obj: dict[str, Any]) -> str:
    commit = pick(obj, ".status.lastAppliedCommit")
    return str(commit)[:12] if commit else "<none>"


def _images(obj: dict[str, Any]) -> str:
    containers = pick(obj, ".spec.template.containers") or []
    return ",".join(str(c.get("image", "")) for c in containers)


def _event_columns(wide: bool, now: datetime | None) -> list[Column]:
    cols = [
        Column("LAST SEEN", _age(".spec.lastTimestamp", now)),
        Column("TYPE", _at(".spec.type")),
        Column("REASON", _at(".spec.reason")),
        Column("OBJECT", _event_object),
    ]
    if wide:
        cols += [
            Column("COUNT", _at(".spec.count")),
            Column("FIRST SEEN", _age(".spec.firstTimestamp", now)),
        ]
    return [*cols, Column("MESSAGE", _at(".spec.message"))]


def _application_columns(wide: bool, now: datetime | None) -> list[Column]:
    cols = [
        Column("NAME", _at(".metadata.name")),
        Column("READY", _ready),
        Column("UP-TO-DATE", lambda o: text(pick(o, ".status.updatedReplicas") or 0)),
        Column("AVAILABLE", lambda o: text(pick(o, ".status.availableReplicas") or 0)),
        Column("CLUSTER", _at(".spec.cluster")),
        Column("ENDPOINT", _endpoint),
        Column("AGE", _age(".metadata.creationTimestamp", now)),
    ]
    if wide:
        cols += [Column("REVISION", _at(".status.currentRevision")), Column("IMAGES", _images)]
    return cols


def _gitrepository_columns(now: datetime | None) -> list[Column]:
    """The URL last, so it is what a narrow terminal cuts."""
    return [
        Column("NAME", _at(".metadata.name")),
        Column("READY", _at(".status.phase")),
        Column("COMMIT", _commit),
        Column("AGE", _age(".metadata.creationTimestamp", now)),
        Column("URL", _at(".spec.url")),
    ]


def _generic_columns(cls: type[Resource], now: datetime | None) -> list[Column]:
    return [
        Column("NAME", _at(".metadata.name")),
        *(Column(h.upper(), _at(path)) for h, path in cls.KIND.columns),
        Column("AGE", _age(".metadata.creationTimestamp", now)),
    ]


def columns(
    cls: type[Resource],
    *,
    wide: bool = False,
    all_projects: bool = False,
    now: datetime | None = None,
) -> list[Column]:
    """The columns of `cls`'s table, in order."""
    kind = cls.KIND.kind
    if kind == "Event":
        cols = _event_columns(wide, now)
    elif kind == "Application":
        cols = _application_columns(wide, now)
    elif kind == "GitRepository":
        cols = _gitrepository_columns(now)
    else:
        cols = _generic_columns(cls, now)
    if all_projects and cls.KIND.scope is Scope.PROJECT:
        cols.insert(0, Column("PROJECT", _at(".metadata.project")))
    if wide and kind != "Event":
        cols.append(Column("LABELS", _labels))
    return cols


def default_order(cls: type[Resource], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events oldest first by last seen, as `kubectl get events`; others as listed (by name)."""
    if cls.KIND.kind == "Event":
        return sorted(items, key=lambda o: str(pick(o, ".spec.lastTimestamp") or ""))
    return items
