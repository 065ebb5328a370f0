"""`Event`: something a controller did or saw to a record, Kubernetes-style fields (involvedObject,
type, reason, message, count, first and last timestamps, source) kept in `spec` as every
kind's are. Repeats of one (object,
reason, message) are one Event with a growing count. Events are short-lived: they are written
with an etcd lease and vanish about an hour after their last occurrence.

An Event belongs to an object, not to a name: it carries the involved record's uid, and
`involves` is the one rule every reader (the API's field selector, `zunctl describe`) applies,
so a new record of an old name starts with none of the old one's Events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from zun_controller.models.base import KindInfo, Model, Resource, Scope

#: the project of Events about cluster-scoped records (Hosts, Clusters)
SYSTEM_PROJECT = "zun-system"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class ObjectReference(Model):
    kind: str
    name: str
    project: str | None = None
    uid: str | None = None


def involves(ref: ObjectReference, kind: str, name: str, uid: str | None) -> bool:
    """Whether an Event about `ref` is about the record (kind, name, uid): same kind and name,
    and the same uid when both carry one (an Event without a uid, as written before Events
    carried one, matches by kind and name; so does a record asked for without its uid)."""
    if ref.kind != kind or ref.name != name:
        return False
    return not ref.uid or not uid or ref.uid == uid


class EventSource(Model):
    component: str = "zun-controller"
    host: str | None = None


class EventSpec(Model):
    involved_object: ObjectReference
    type: EventType = EventType.NORMAL
    reason: str
    message: str = ""
    count: int = 1
    first_timestamp: datetime
    last_timestamp: datetime
    source: EventSource = Field(default_factory=EventSource)


class Event(Resource):
    KIND: ClassVar[KindInfo] = KindInfo(
        kind="Event",
        plural="events",
        scope=Scope.PROJECT,
        short_names=["ev"],
        columns=[
            ("Type", ".spec.type"),
            ("Reason", ".spec.reason"),
            ("Object", ".spec.involvedObject.name"),
            ("Count", ".spec.count"),
            ("Last", ".spec.lastTimestamp"),
            ("Message", ".spec.message"),
        ],
    )

    kind: Literal["Event"] = "Event"
    spec: EventSpec
