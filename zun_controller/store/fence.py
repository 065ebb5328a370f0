"""Fencing: every write of a leader carries the proof that it still leads.

Leader election alone cannot stop a deposed leader from acting: a replica whose process was
starved of CPU, or cut from etcd for longer than its lease, learns of the loss only when its
renew loop next runs, and a rival may have won meanwhile. A `Fence` closes that window:

- In the store: `FencedKV` adds to every transaction a compare of the leader key's
  mod_revision with the revision at which this replica won it. Once the lease has expired (the
  key is gone) or a rival holds it (another revision), etcd refuses the write, the store raises
  `FencedError` and `lost` is set, so the replica stops at once.
- Outside the store (engine calls) there is no compare to attach: `check()` refuses once the
  last renewal the elector saw is older than its renew deadline, which is shorter than the
  lease, so a replica stops acting before etcd can let a rival in (client-go's rule).

Reads and watches pass through unfenced: a standby keeps its caches warm.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence

from zun_controller.errors import FencedError
from zun_controller.store.kv import KV, KeyValue, KVEvent, RangeResult, Txn, TxnResult


class Fence:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.key = ""
        self.revision = 0  #: mod_revision of the leader key when won; 0 while not leading
        self.valid_until = 0.0  #: on the `now` clock: when outside actions stop being safe
        self.lost = asyncio.Event()
        self._renewed = asyncio.Event()

    def arm(self, key: str, revision: int, valid_until: float) -> None:
        self.key, self.revision, self.valid_until = key, revision, valid_until
        self.lost.clear()
        self._wake()

    def renewed(self, valid_until: float) -> None:
        self.valid_until = max(self.valid_until, valid_until)
        self._wake()

    def _wake(self) -> None:
        self._renewed.set()
        self._renewed = asyncio.Event()

    async def held(self) -> None:
        """Return once this replica surely leads: at once, or at the next renewal. A replica
        whose renewals lag takes no new work meanwhile (and stops when the lease is lost)."""
        while not self.holds():
            await self._renewed.wait()

    def lose(self) -> None:
        if self.revision:
            self.revision = 0
            self.lost.set()

    def holds(self) -> bool:
        return self.revision > 0 and self._now() < self.valid_until

    def check(self, what: str) -> None:
        """Raise `FencedError` unless this replica surely still leads."""
        if not self.holds():
            raise FencedError(f"{what}: refused, this replica is not the leader (any more)")


class FencedKV:
    """A `KV` whose transactions only apply while `fence` holds the leader key."""

    def __init__(self, kv: KV, fence: Fence) -> None:
        self.inner = kv
        self.fence = fence

    def _fenced(self, txn: Txn) -> Txn:
        self.check_leading("write")
        return dataclasses.replace(
            txn, compares=[*txn.compares, (self.fence.key, self.fence.revision)]
        )

    def _result(self, result: TxnResult, revision: int) -> TxnResult:
        if result.succeeded:
            return result
        leader = result.current.get(self.fence.key)
        if leader is None or leader.mod_revision != revision:
            self.fence.lose()
            raise FencedError(
                f"write refused by etcd: the lease {self.fence.key} is gone or held by another"
            )
        current = {k: v for k, v in result.current.items() if k != self.fence.key}
        return dataclasses.replace(result, current=current)

    async def commit(self, txn: Txn) -> TxnResult:
        revision = self.fence.revision
        result = await self.inner.commit(self._fenced(txn))
        return self._result(result, revision)

    async def commit_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        revision = self.fence.revision
        results = await self.inner.commit_many([self._fenced(t) for t in txns])
        return [self._result(r, revision) for r in results]

    async def get(self, key: str) -> KeyValue | None:
        return await self.inner.get(key)

    async def range(
        self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        return await self.inner.range(prefix, start=start, limit=limit, revision=revision)

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[KVEvent]]:
        return self.inner.watch(prefix, start_revision)

    async def delete_prefix(self, prefix: str) -> int:
        self.check_leading("delete_prefix")
        return await self.inner.delete_prefix(prefix)

    def check_leading(self, what: str) -> None:
        if not self.fence.revision:
            raise FencedError(f"{what} refused: this replica is not the leader")

    async def revision(self) -> int:
        return await self.inner.revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def grant_lease(self, ttl: int) -> int:
        return await self.inner.grant_lease(ttl)

    async def keep_alive(self, lease: int) -> int:
        return await self.inner.keep_alive(lease)

    async def revoke_lease(self, lease: int) -> None:
        await self.inner.revoke_lease(lease)

    async def close(self) -> None:
        await self.inner.close()
