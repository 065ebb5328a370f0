"""The key-value port the record store is built on: etcd's model, reduced to what Zun uses.

Two implementations follow it: `EtcdKV` (real etcd) and `MemoryKV` (unit tests). One contract
suite (tests/unit/test_kv_contract.py, tests/e2e/test_kv_contract_etcd.py) runs against both.

Semantics, as etcd's: every successful write bumps one global revision; a key's `mod_revision`
is the revision of its last write; a `Txn` applies all its writes at one revision only when every
compare holds (`expected == 0` means "absent"); `watch(prefix, start)` yields every change with
revision >= start in order and raises `CompactedError` when `start` is older than the compaction
point, `TransientError` when the connection drops (callers resume from their last revision + 1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


class EventType(StrEnum):
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True, slots=True)
class KVEvent:
    type: EventType
    key: str
    value: bytes
    mod_revision: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int
    more: bool


@dataclass(frozen=True, slots=True)
class Txn:
    """Writes applied together, only if every key's mod_revision equals the expected one."""

    compares: Sequence[tuple[str, int]] = ()
    puts: Sequence[tuple[str, bytes]] = ()
    deletes: Sequence[str] = ()
    lease: int = 0


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int
    #: on failure: the current value of every compared key (None when absent)
    current: dict[str, KeyValue | None] = field(default_factory=dict)


class KV(Protocol):
    async def get(self, key: str) -> KeyValue | None: ...

    async def range(
        self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        """Keys under `prefix` from `start` (inclusive) in key order, at `revision` (0: now)."""
        ...

    async def commit(self, txn: Txn) -> TxnResult: ...

    async def commit_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        """Independent transactions in one round trip; each succeeds or fails on its own."""
        ...

    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[KVEvent]]: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`; how many went."""
        ...

    async def revision(self) -> int: ...

    async def compact(self, revision: int) -> None: ...

    async def grant_lease(self, ttl: int) -> int: ...

    async def keep_alive(self, lease: int) -> int:
        """Refresh a lease; its remaining TTL in seconds, 0 when it has expired."""
        ...

    async def revoke_lease(self, lease: int) -> None: ...

    async def close(self) -> None: ...
