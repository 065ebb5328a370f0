"""`EventRecorder`: reconcilers say what they did (`record(obj, type, reason, message)`); Events
are aggregated in memory (a repeat of one object, reason and message is count + 1) and written
by a background task, so recording never blocks or fails a reconcile.

Retention is an etcd lease: every Event is written with a lease of `ttl` seconds (rotated every
ttl/6), so it vanishes within `ttl` of its last occurrence. Memory is bounded too: at most
`max_tracked` Events are remembered for aggregation, and at most `max_pending` wait to be
written (more are dropped and counted in `zun_events_dropped_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from zun_controller.metrics import Metrics
from zun_controller.models.base import ObjectMeta, Resource
from zun_controller.models.event import (
    SYSTEM_PROJECT,
    Event,
    EventSpec,
    EventType,
    ObjectReference,
)
from zun_controller.store.codec import encode
from zun_controller.store.keys import record_key
from zun_controller.store.kv import Txn
from zun_controller.store.records import RecordStore

log = logging.getLogger(__name__)
_BATCH = 100  # transactions per round trip: under etcd's default of 128 operations per txn


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def event_name(obj: Resource, reason: str, message: str) -> str:
    """Deterministic per (object, reason, message): repeats land on one Event."""
    digest = hashlib.sha256(
        "|".join((obj.KIND.kind, obj.metadata.uid or "", reason, message)).encode()
    ).hexdigest()
    return f"{obj.name[:48]}-{digest[:12]}"


class EventRecorder:
    def __init__(
        self,
        store: RecordStore,
        metrics: Metrics,
        *,
        ttl: int = 3600,
        max_tracked: int = 4096,
        max_pending: int = 1024,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._store, self._metrics, self._now = store, metrics, now
        self.ttl, self._max_tracked, self._max_pending = ttl, max_tracked, max_pending
        self._events: OrderedDict[str, Event] = OrderedDict()
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._lease, self._lease_at = 0, 0.0

    def record(self, obj: Resource, type_: EventType | str, reason: str, message: str) -> None:
        """Remember an Event about obj for the writer task; never raises, never waits."""
        try:
            self._remember(obj, EventType(type_), reason, message)
        except Exception:  # a broken Event must not break the reconcile that records it
            log.exception("event not recorded", extra={"reason": reason})
            self._metrics.events_dropped.inc()

    def _remember(self, obj: Resource, type_: EventType, reason: str, message: str) -> None:
        project = obj.project or SYSTEM_PROJECT
        key = record_key(Event.KIND, event_name(obj, reason, message), project)
        if key not in self._pending and len(self._pending) >= self._max_pending:
            self._metrics.events_dropped.inc()
            return
        now = self._now()
        known = self._events.pop(key, None)
        if known is not None:
            known.spec.count += 1
            known.spec.last_timestamp = now
        else:
            known = self._new(obj, project, type_=type_, reason=reason, message=message, now=now)
        self._events[key] = known
        while len(self._events) > self._max_tracked:
            self._events.popitem(last=False)
        self._pending.add(key)
        self._wake.set()

    def _new(
        self,
        obj: Resource,
        project: str,
        *,
        type_: EventType,
        reason: str,
        message: str,
        now: datetime,
    ) -> Event:
        ref = ObjectReference(
            kind=obj.KIND.kind, name=obj.name, project=obj.project, uid=obj.metadata.uid
        )
        meta = ObjectMeta(
            name=event_name(obj, reason, message),
            project=project,
            uid=str(uuid.uuid4()),
            generation=1,
            creation_timestamp=now,
        )
        spec = EventSpec(
            involved_object=ref,
            type=type_,
            reason=reason,
            message=message,
            first_timestamp=now,
            last_timestamp=now,
        )
        return Event(metadata=meta, spec=spec)

    def events(self) -> list[Event]:
        """The Events remembered, oldest first (copies)."""
        return [e.model_copy(deep=True) for e in self._events.values()]

    async def run(self) -> None:
        """Write what was recorded until cancelled (a manager task), then what is left."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.flush()
        finally:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.flush(), 2.0)

    async def flush(self) -> None:
        """Write every pending Event now; failures are logged, counted and dropped."""
        keys, self._pending = self._pending, set()
        events = [(k, self._events[k]) for k in keys if k in self._events]
        if not events:
            return
        try:
            lease = await self._current_lease()
            txns = [Txn(puts=[(k, encode(e))], lease=lease) for k, e in events]
            for start in range(0, len(txns), _BATCH):
                await self._store.kv.commit_many(txns[start : start + _BATCH])
        except Exception as exc:
            self._metrics.events_dropped.inc(len(events))
            log.warning("events not written", extra={"count": len(events), "error": repr(exc)})

    async def _current_lease(self) -> int:
        if not self._lease or time.monotonic() - self._lease_at > self.ttl / 6:
            self._lease = await self._store.kv.grant_lease(self.ttl)
            self._lease_at = time.monotonic()
        return self._lease
