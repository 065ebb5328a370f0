"""The garbage collector: records whose owner is gone are deleted; deletes propagate.

Generic over every registered kind, as Kubernetes' garbage collector is. It works from the
informers' caches (one per kind, shared with the controllers) and an `OwnerIndex` kept from
their events, so no event costs a list; it is level-triggered (every record with owner
references is checked when the informers first list, and again on each resync), so a
dangling reference written while the controller was down is collected after a restart.

For a record with owner references, each owner (by kind, name and uid) is one of:
- solid: it exists with that uid and is not being deleted in the foreground;
- waiting: it exists with that uid, deleting, with the `foregroundDeletion` finalizer;
- dangling: no record of that name, or one with another uid. The cache is not trusted for
  this: the store is read before anything is deleted, and every write is a compare-and-swap
  on the resourceVersion the decision was made on;
- unresolvable: an unknown kind, no uid; treated as solid, never as gone.
With a solid owner the record stays (references to dangling or waiting owners are removed);
without one, it is deleted when an owner waits (in the foreground itself when it has
dependents) or when an owner is dangling (background).

A deleting owner with the `orphan` finalizer has its references removed from its dependents,
then the finalizer; one with `foregroundDeletion` keeps it until no dependent is left.
"""

from __future__ import annotations

import contextlib
import logging
from enum import Enum
from typing import Any

from zun_controller.engine.controller import Controller
from zun_controller.engine.informer import Cached, Informer
from zun_controller.engine.manager import Manager
from zun_controller.engine.ownership import OwnerIndex, Ref, owner_key
from zun_controller.engine.reconciler import Result
from zun_controller.errors import InvalidError, NotFoundError
from zun_controller.metrics import Metrics
from zun_controller.models.base import OwnerReference, Resource
from zun_controller.models.deletion import FOREGROUND, ORPHAN
from zun_controller.models.registry import kinds
from zun_controller.store.records import RecordStore

log = logging.getLogger(__name__)
NAME = "garbagecollector"


class Owner(Enum):
    SOLID = "solid"
    WAITING = "waiting"
    DANGLING = "dangling"


class GarbageCollector:
    """The reconciler of the `garbagecollector` controller; keys are any kind's queue keys."""

    def __init__(self, store: RecordStore, informers: dict[str, Informer[Any]]) -> None:
        self.store = store
        self.informers = informers
        self.index = OwnerIndex(self._enqueue)
        self.controller: Controller | None = None

    def _enqueue(self, key: str) -> None:
        if self.controller is not None and key.partition("/")[0] in self.informers:
            self.controller.queue.add(key)

    def _cached(self, key: str) -> Resource | None:
        informer = self.informers.get(key.partition("/")[0])
        try:
            return informer.get(key) if informer else None
        except InvalidError:
            return None

    async def reconcile(self, key: str) -> Result:
        obj = self._cached(key)
        if obj is None:
            return Result()
        if obj.metadata.deletion_timestamp and await self._propagate(obj):
            return Result()
        if obj.metadata.owner_references:
            await self._collect(obj)
        return Result()

    # -- an owner being deleted ------------------------------------------------------------------

    async def _propagate(self, owner: Resource) -> bool:
        """Act on a propagation finalizer; True when the owner was written (it changed)."""
        finalizers = owner.metadata.finalizers
        dependents = self.index.dependents(owner.key, owner.metadata.uid or "")
        if ORPHAN in finalizers:
            if dependents:
                for key in dependents:
                    await self._cut_loose(key, owner.metadata.uid or "")
                return True
            return await self._drop_finalizer(owner, ORPHAN)
        if FOREGROUND in finalizers and not dependents:
            return await self._drop_finalizer(owner, FOREGROUND)
        return False

    async def _cut_loose(self, key: str, uid: str) -> None:
        dependent = self._cached(key)
        if dependent is None:
            return
        await self._keep_refs(
            dependent, [r for r in dependent.metadata.owner_references if r.uid != uid]
        )
        log.info("orphaned", extra={"key": key, "owner_uid": uid})

    async def _drop_finalizer(self, owner: Resource, finalizer: str) -> bool:
        owner.metadata.finalizers = [f for f in owner.metadata.finalizers if f != finalizer]
        with contextlib.suppress(NotFoundError):
            await self.store.update(owner)
        log.info("propagation done", extra={"key": owner.key, "finalizer": finalizer})
        return True

    # -- a dependent -------------------------------------------------------------------------

    async def _collect(self, obj: Resource) -> None:
        refs = [
            Ref(r.kind, r.name, r.uid, owner_key(r.kind, r.name, obj.key))
            for r in obj.metadata.owner_references
        ]
        states = {r.uid: await self._owner(r) for r in refs}
        alive = [s for s in states.values() if s is Owner.SOLID]
        if alive:
            keep = [
                r
                for r in obj.metadata.owner_references
                if states.get(r.uid, Owner.SOLID) is Owner.SOLID
            ]
            if len(keep) != len(obj.metadata.owner_references):
                await self._keep_refs(obj, keep)
            return
        if obj.metadata.deletion_timestamp:
            return
        waiting = Owner.WAITING in states.values()
        await self._delete(
            obj, foreground=waiting and bool(self.index.dependents(obj.key, obj.metadata.uid or ""))
        )

    async def _owner(self, ref: Ref) -> Owner:
        if ref.owner_key is None or not ref.uid:
            return Owner.SOLID
        cached = self._cached(ref.owner_key)
        if cached is not None and cached.metadata.uid == ref.uid:
            return _state(cached)
        return await self._owner_in_store(ref)

    async def _owner_in_store(self, ref: Ref) -> Owner:
        informer = self.informers.get((ref.owner_key or "").partition("/")[0])
        if informer is None:
            return Owner.SOLID
        name, project = _name_project(ref.owner_key or "")
        try:
            live = await self.store.get(informer.cls, name, project)
        except NotFoundError:
            return Owner.DANGLING
        except InvalidError:
            return Owner.SOLID  # it exists, whatever it says
        return _state(live) if live.metadata.uid == ref.uid else Owner.DANGLING

    async def _keep_refs(self, obj: Resource, keep: list[OwnerReference]) -> None:
        obj.metadata.owner_references = keep
        with contextlib.suppress(NotFoundError):
            await self.store.update(obj)

    async def _delete(self, obj: Resource, *, foreground: bool) -> None:
        try:
            await self.store.delete(
                type(obj),
                obj.name,
                obj.project,
                resource_version=obj.metadata.resource_version,
                finalizer=FOREGROUND if foreground else None,
            )
        except NotFoundError:
            return
        log.info("collected", extra={"key": obj.key, "foreground": foreground})


def _state(owner: Resource) -> Owner:
    meta = owner.metadata
    if meta.deletion_timestamp and FOREGROUND in meta.finalizers:
        return Owner.WAITING
    return Owner.SOLID


def _name_project(key: str) -> tuple[str, str | None]:
    parts = key.split("/")
    return (parts[2], parts[1]) if len(parts) == 3 else (parts[1], None)


def _never(old: Cached | None, new: Cached | None) -> bool:
    return False


def _informer_of(
    manager: Manager, store: RecordStore, metrics: Metrics, cls: type[Resource], resync: float
) -> Informer[Any]:
    for informer in manager.informers:
        if informer.cls is cls:
            return informer
    informer = Informer(store, cls, metrics=metrics, resync_period=resync)
    manager.add_informer(informer)
    return informer


def register_garbage_collector(
    manager: Manager,
    store: RecordStore,
    metrics: Metrics,
    *,
    workers: int = 2,
    resync_period: float = 60.0,
) -> GarbageCollector:
    """Add the garbage collector to `manager`, over every registered kind; it shares the
    informers already registered and adds one for each kind that has none. Call it after the
    controllers are registered (so their informers are shared, not doubled)."""
    informers = {
        cls.KIND.plural: _informer_of(manager, store, metrics, cls, resync_period)
        for cls in kinds()
    }
    gc = GarbageCollector(store, informers)
    first = next(iter(informers.values()))
    gc.controller = Controller(
        NAME, gc, first, store=store, metrics=metrics, workers=workers, predicate=_never
    )
    for informer in informers.values():
        informer.add_handler(gc.index.on_change)
    manager.add_controller(gc.controller)
    return gc
