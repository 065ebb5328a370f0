"""The kopf side of the bridge: custom resource events become store writes (spec goes down).

Handlers are level-based: create, update and resume (every resource at start-up, so a
restarted bridge resyncs everything) all do the same thing — make the record match the custom
resource. Deleting a custom resource deletes the record and holds kopf's finalizer until the
record is gone (its own finalizers clean up outside first). Invalid resources get a status
condition naming the field and are not retried until they change.

Every write goes through admission: a namespaced resource with the rights of a member of the
project its namespace names (no admin-only fields, the port policy, the project's quota); a
cluster-scoped one with an admin's (only a Kubernetes cluster admin can make those). A refused
resource gets condition `Invalid` (reason `Refused`) and is retried with a delay, since a quota
may free up.

The bridge never takes over a record it did not make (models/ownership.py): a custom resource
naming a record another writer owns gets phase `Conflict` and condition `Ready` False with
reason `OwnershipConflict` naming the owner, the record is left as it is (retried every
`CONFLICT_RETRY` seconds, so it is created once the other record goes), and deleting that
custom resource deletes nothing; the annotation `zun.openstack.org/adopt: "true"` on the custom
resource takes the record over.
"""

from __future__ import annotations

from typing import Any

import kopf

from zun_controller.admission import ADMIN, Admission, Writer
from zun_controller.bridge.mapping import record_from_resource, wants_change
from zun_controller.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    TransientError,
)
from zun_controller.models.base import GROUP, VERSION, Resource
from zun_controller.models.ownership import BRIDGE, adopts, conflict, owner_of
from zun_controller.models.registry import by_kind
from zun_controller.store.records import RecordStore

CONFLICT_RETRY = 30.0


class OwnedElsewhere(ConflictError):
    """The record the custom resource names is another writer's; the message names it."""


def _condition(patch: Any, phase: str, cond: tuple[str, str, str], message: str) -> None:
    """Set the custom resource's phase and its one condition (type, status, reason)."""
    type_, status, reason = cond
    patch.status["phase"] = phase
    patch.status["conditions"] = [
        {"type": type_, "status": status, "reason": reason, "message": message}
    ]


class Downward:
    """Applies custom resources to the store."""

    def __init__(self, store: RecordStore, admission: Admission | None = None) -> None:
        self.store = store
        self.admission = admission or Admission(store)

    async def sync(self, kind: str, body: dict[str, Any], patch: Any) -> None:
        try:
            desired = record_from_resource(kind, body)
        except InvalidError as exc:
            _condition(patch, "Invalid", ("Invalid", "True", "ValidationFailed"), str(exc))
            raise kopf.PermanentError(str(exc)) from None
        try:
            await self._converge(desired, writer_of(desired))
        except OwnedElsewhere as exc:
            _condition(patch, "Conflict", ("Ready", "False", "OwnershipConflict"), str(exc))
            raise kopf.TemporaryError(str(exc), delay=CONFLICT_RETRY) from None
        except (InvalidError, ForbiddenError) as exc:
            _condition(patch, "Invalid", ("Invalid", "True", "Refused"), str(exc))
            raise kopf.TemporaryError(str(exc), delay=30) from None
        except (ConflictError, TransientError) as exc:
            raise kopf.TemporaryError(str(exc), delay=1) from None

    async def _converge(self, desired: Resource, writer: Writer) -> None:
        cls = type(desired)
        try:
            current = await self.store.get(cls, desired.name, desired.project)
        except NotFoundError:
            await self.admission.create(desired, writer)  # AlreadyExistsError: a race, again
            return
        owner = owner_of(current.metadata)
        if owner != BRIDGE and not adopts(desired.metadata.annotations):
            raise OwnedElsewhere(conflict(desired.key, owner))
        desired = await self.admission.prepare(desired, current, writer)
        if current.metadata.deletion_timestamp or not wants_change(current, desired):
            return
        old = current.model_copy(deep=True)
        current.spec = desired.spec
        current.metadata.labels = desired.metadata.labels
        current.metadata.annotations = desired.metadata.annotations
        await self.admission.update(current, old, writer)

    async def remove(self, kind: str, body: dict[str, Any]) -> None:
        cls = by_kind(kind)
        meta = body.get("metadata", {})
        project = meta.get("namespace")
        try:
            current = await self.store.get(cls, meta["name"], project)
            if owner_of(current.metadata) != BRIDGE:
                return  # another writer's record: the custom resource only named it
            await self.store.delete(cls, meta["name"], project)
            await self.store.get(cls, meta["name"], project)
        except NotFoundError:
            return
        raise kopf.TemporaryError("waiting for the record's cleanup outside", delay=1)


def register(registry: kopf.OperatorRegistry, downward: Downward, kinds: list[str]) -> None:
    for kind in kinds:
        _register_kind(registry, downward, kind)


def _register_kind(registry: kopf.OperatorRegistry, downward: Downward, kind: str) -> None:
    plural = by_kind(kind).KIND.plural
    resource = (GROUP, VERSION, plural)

    async def sync(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        await downward.sync(kind, dict(body), patch)

    async def remove(body: kopf.Body, **_: Any) -> None:
        await downward.remove(kind, dict(body))

    kopf.on.create(*resource, registry=registry, id="sync")(sync)
    kopf.on.update(*resource, registry=registry, id="sync")(sync)
    kopf.on.resume(*resource, registry=registry, id="sync")(sync)
    kopf.on.delete(*resource, registry=registry, id="remove")(remove)


def writer_of(record: Resource) -> Writer:
    """A custom resource's rights: its namespace's project member's, or (cluster-scoped) an
    admin's."""
    if record.project:
        return Writer(f"custom resource {record.project}/{record.name}")
    return ADMIN
