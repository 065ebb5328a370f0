"""Informer: list at revision R, watch from R + 1, keep a cache, tell handlers (old, new).

The cache holds each record's stored bytes and revision, not parsed objects: it is small
(about the size of the JSON) and every `get` hands out a fresh object, so nobody can mutate
what the cache holds. A compacted watch revision means: list again, diff against the cache,
and tell handlers what changed meanwhile (deletions included), then watch on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from zun_controller.errors import CompactedError
from zun_controller.metrics import Metrics
from zun_controller.models.base import Resource
from zun_controller.store.codec import decode
from zun_controller.store.keys import ROOT, kind_prefix, queue_key, record_key
from zun_controller.store.kv import EventType, KVEvent
from zun_controller.store.records import RecordStore

R = TypeVar("R", bound=Resource)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cached:
    value: bytes
    mod_revision: int


#: (queue key, old, new); old is new on a periodic resync, None on add/delete
Handler = Callable[[str, Cached | None, Cached | None], None]


class Informer(Generic[R]):
    def __init__(
        self,
        store: RecordStore,
        cls: type[R],
        *,
        metrics: Metrics,
        resync_period: float | None = None,
    ) -> None:
        self.cls = cls
        self.kind = cls.KIND.kind
        self._store = store
        self._metrics = metrics
        self._resync_period = resync_period
        self._prefix = kind_prefix(cls.KIND)
        self._cache: dict[str, Cached] = {}
        self._handlers: list[Handler] = []
        self.revision = 0
        self.synced = asyncio.Event()
        metrics.init_kind(self.kind)

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    # -- reads (the lister) --------------------------------------------------------------------

    def get(self, key: str) -> R | None:
        """The record of a queue key, freshly parsed; `InvalidError` when it fails validation."""
        cached = self._cache.get(key)
        return decode(self.cls, cached.value, cached.mod_revision) if cached else None

    def get_by_name(self, name: str, project: str | None = None) -> R | None:
        return self.get(queue_key(record_key(self.cls.KIND, name, project)))

    def stored(self, obj: Resource) -> bytes | None:
        """The cached value of obj at obj's resourceVersion, if the cache still has that one.

        Pass it to `RecordStore.update_status(obj, stored=...)` to write status without a read.
        """
        cached = self._cache.get(obj.key)
        if cached and str(cached.mod_revision) == obj.metadata.resource_version:
            return cached.value
        return None

    def raw(self, key: str) -> Cached | None:
        return self._cache.get(key)

    def list_keys(self) -> list[str]:
        return list(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until cancelled; relist whenever the watch revision was compacted."""
        resync = asyncio.create_task(self._resync_loop()) if self._resync_period else None
        try:
            while True:
                await self._relist()
                try:
                    await self._watch()
                except CompactedError:
                    self._metrics.relists.labels(self.kind, "compacted").inc()
                    log.info("watch revision compacted; listing again", extra={"kind": self.kind})
        finally:
            if resync:
                resync.cancel()

    async def _relist(self) -> None:
        kvs, revision = await self._store.list_raw(self._prefix)
        fresh = {queue_key(kv.key): Cached(kv.value, kv.mod_revision) for kv in kvs}
        old = self._cache
        self._cache = fresh
        self.revision = revision
        for key in old.keys() - fresh.keys():
            self._notify(key, old[key], None)
        for key, new in fresh.items():
            before = old.get(key)
            if before is None or before.mod_revision != new.mod_revision:
                self._notify(key, before, new)
        self._metrics.cache_records.labels(self.kind).set(len(fresh))
        self.synced.set()

    async def _watch(self) -> None:
        async for batch in self._store.watch(self._prefix, self.revision + 1):
            for event in batch:
                self._apply(event)
            self.revision = batch[-1].mod_revision
            self._metrics.cache_records.labels(self.kind).set(len(self._cache))

    def _apply(self, event: KVEvent) -> None:
        key = event.key.removeprefix(ROOT)
        old = self._cache.get(key)
        if event.type is EventType.DELETE:
            if old is not None:
                del self._cache[key]
                self._notify(key, old, None)
            return
        new = Cached(event.value, event.mod_revision)
        self._cache[key] = new
        self._notify(key, old, new)

    def _notify(self, key: str, old: Cached | None, new: Cached | None) -> None:
        for handler in self._handlers:
            handler(key, old, new)

    async def _resync_loop(self) -> None:
        assert self._resync_period
        while True:
            await asyncio.sleep(self._resync_period)
            for key, cached in list(self._cache.items()):
                self._notify(key, cached, cached)
