"""`MemoryKV`: an in-process implementation of the KV port with etcd's semantics, for unit tests.

It keeps a full history of changes (until `compact`) so watches can start in the past, and
leases expire on an injectable monotonic time source.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Callable, Sequence

from zun_controller.errors import CompactedError, TransientError
from zun_controller.store.kv import EventType, KeyValue, KVEvent, RangeResult, Txn, TxnResult


class MemoryKV:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._data: dict[str, KeyValue] = {}
        self._keys: list[str] = []
        self._rev = 1
        self._history: list[KVEvent] = []
        self._compacted = 0
        self._watchers: list[asyncio.Queue[list[KVEvent] | BaseException]] = []
        self._leases: dict[int, tuple[int, float]] = {}
        self._lease_keys: dict[int, set[str]] = {}
        self._next_lease = 1
        self._closed = False

    async def get(self, key: str) -> KeyValue | None:
        self._expire_leases()
        return self._data.get(key)

    async def range(
        self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        self._expire_leases()
        if revision and revision <= self._compacted:
            raise CompactedError(self._compacted + 1)
        data = self._data if not revision or revision == self._rev else self._at(revision)
        keys = self._keys if data is self._data else sorted(data)
        lo = bisect.bisect_left(keys, max(prefix, start or ""))
        out: list[KeyValue] = []
        for key in keys[lo:]:
            if not key.startswith(prefix):
                break
            if limit and len(out) == limit:
                return RangeResult(out, revision or self._rev, True)
            out.append(data[key])
        return RangeResult(out, revision or self._rev, False)

    def _at(self, revision: int) -> dict[str, KeyValue]:
        data = dict(self._data)
        for event in reversed(self._history):
            if event.mod_revision <= revision:
                break
            data.pop(event.key, None)
        for event in self._history:
            if event.mod_revision > revision:
                break
            if event.type is EventType.PUT:
                old = data.get(event.key)
                create = old.create_revision if old else event.mod_revision
                data[event.key] = KeyValue(event.key, event.value, event.mod_revision, create)
            else:
                data.pop(event.key, None)
        return data

    async def commit(self, txn: Txn) -> TxnResult:
        self._expire_leases()
        return self._apply(txn)

    async def commit_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        self._expire_leases()
        return [self._apply(txn) for txn in txns]

    def _apply(self, txn: Txn) -> TxnResult:
        self._check_open()
        current = {key: self._data.get(key) for key, _ in txn.compares}
        for key, expected in txn.compares:
            kv = current[key]
            if (kv.mod_revision if kv else 0) != expected:
                return TxnResult(False, self._rev, current)
        if not txn.puts and not txn.deletes:
            return TxnResult(True, self._rev)
        if txn.lease and txn.lease not in self._leases:
            raise TransientError(f"lease {txn.lease} not found")
        self._rev += 1
        events = [self._put(key, value, txn.lease) for key, value in txn.puts]
        events += [e for key in txn.deletes if (e := self._delete(key))]
        self._publish(events)
        return TxnResult(True, self._rev)

    def _put(self, key: str, value: bytes, lease: int) -> KVEvent:
        old = self._data.get(key)
        if old is None:
            bisect.insort(self._keys, key)
        self._data[key] = KeyValue(key, value, self._rev, old.create_revision if old else self._rev)
        if lease:
            self._lease_keys.setdefault(lease, set()).add(key)
        return KVEvent(EventType.PUT, key, value, self._rev)

    def _delete(self, key: str) -> KVEvent | None:
        if self._data.pop(key, None) is None:
            return None
        del self._keys[bisect.bisect_left(self._keys, key)]
        return KVEvent(EventType.DELETE, key, b"", self._rev)

    def _publish(self, events: list[KVEvent]) -> None:
        if not events:
            return
        self._history.extend(events)
        for queue in self._watchers:
            queue.put_nowait(events)

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[KVEvent]]:
        self._check_open()
        if start_revision and start_revision <= self._compacted:
            raise CompactedError(self._compacted + 1)
        queue: asyncio.Queue[list[KVEvent] | BaseException] = asyncio.Queue()
        self._watchers.append(queue)
        try:
            past = [e for e in self._history if e.mod_revision >= start_revision]
            if start_revision and (past := [e for e in past if e.key.startswith(prefix)]):
                yield past
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                batch = [e for e in item if e.key.startswith(prefix)]
                if batch and (not start_revision or batch[-1].mod_revision >= start_revision):
                    yield [e for e in batch if e.mod_revision >= start_revision]
        finally:
            self._watchers.remove(queue)

    async def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self._keys if k.startswith(prefix)]
        if keys:
            self._rev += 1
            self._publish([e for key in keys if (e := self._delete(key))])
        return len(keys)

    async def revision(self) -> int:
        return self._rev

    async def compact(self, revision: int) -> None:
        self._compacted = max(self._compacted, revision)
        self._history = [e for e in self._history if e.mod_revision > revision]

    def drop_watches(self) -> None:
        """Break every open watch with a `TransientError`, as a lost connection does."""
        for queue in self._watchers:
            queue.put_nowait(TransientError("watch stream lost"))

    async def grant_lease(self, ttl: int) -> int:
        lease = self._next_lease
        self._next_lease += 1
        self._leases[lease] = (ttl, self._now() + ttl)
        return lease

    async def keep_alive(self, lease: int) -> int:
        self._expire_leases()
        if lease not in self._leases:
            return 0
        ttl, _ = self._leases[lease]
        self._leases[lease] = (ttl, self._now() + ttl)
        return ttl

    async def revoke_lease(self, lease: int) -> None:
        self._drop_lease(lease)

    def _expire_leases(self) -> None:
        now = self._now()
        for lease in [le for le, (_, deadline) in self._leases.items() if deadline <= now]:
            self._drop_lease(lease)

    def _drop_lease(self, lease: int) -> None:
        if self._leases.pop(lease, None) is None:
            return
        keys = [k for k in self._lease_keys.pop(lease, set()) if k in self._data]
        if keys:
            self._rev += 1
            self._publish([e for key in keys if (e := self._delete(key))])

    async def close(self) -> None:
        self._closed = True
        self.drop_watches()

    def _check_open(self) -> None:
        if self._closed:
            raise TransientError("store closed")
