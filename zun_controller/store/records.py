"""`RecordStore`: typed CRUD over the KV port, generic over every registered kind.

- create: uid, generation 1, creationTimestamp; status starts empty; fails if the name exists.
- update: spec, labels, annotations, finalizers, ownerReferences; compare-and-swap on
  resourceVersion; generation + 1 only when the spec changed; status is kept as stored.
- update_status: status only; spec, metadata and generation are kept as stored.
- delete: with finalizers, sets deletionTimestamp and keeps the record; the key goes when an
  update leaves a deleting record with no finalizers.
- watch: resumes after a dropped connection from the last revision seen + 1; raises
  `CompactedError` when that revision is gone, so callers list again.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from zun_controller.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidError,
    NotFoundError,
    TransientError,
    ZunError,
)
from zun_controller.models.base import Resource
from zun_controller.models.registry import check_scope
from zun_controller.store.batch import TxnBatcher
from zun_controller.store.codec import decode, encode, load, with_status
from zun_controller.store.fence import Fence, FencedKV
from zun_controller.store.keys import kind_prefix, record_key
from zun_controller.store.kv import KV, KeyValue, KVEvent, Txn, TxnResult
from zun_controller.store.selector import parse_selector

R = TypeVar("R", bound=Resource)
log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class RecordList(Generic[R]):
    items: list[R]
    resource_version: str
    continue_token: str | None


def _continue_token(revision: int, next_key: str) -> str:
    raw = json.dumps({"rv": revision, "start": next_key}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _parse_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError):
        raise InvalidError.at("continue", "not a continue token from an earlier list") from None


#: reads and swaps an unconditional delete tries before it gives up on a busy record
DELETE_ATTEMPTS = 5
#: keys per etcd range of a list: a list of any size is read in pages at one revision
LIST_PAGE = 1000


class RecordStore:
    def __init__(
        self,
        kv: KV,
        *,
        now: Callable[[], datetime] = utcnow,
        new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
        watch_retry: tuple[float, float] = (0.05, 2.0),
    ) -> None:
        self.kv = kv
        self._watch_retry = watch_retry
        self._status_batcher = TxnBatcher(kv)
        self._now = now
        self._new_uid = new_uid
        #: set on a leader's store (`fenced`): its writes only apply while it holds the lease
        self.fence: Fence | None = kv.fence if isinstance(kv, FencedKV) else None

    def fenced(self, fence: Fence) -> RecordStore:
        """The same store, whose writes apply only while `fence` holds (store/fence.py)."""
        return RecordStore(
            FencedKV(self.kv, fence),
            now=self._now,
            new_uid=self._new_uid,
            watch_retry=self._watch_retry,
        )

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, cls: type[R], name: str, project: str | None = None) -> R:
        kv = await self.kv.get(record_key(cls.KIND, name, project))
        if kv is None:
            raise NotFoundError(f"{cls.KIND.kind} {_where(name, project)} not found")
        return decode(cls, kv.value, kv.mod_revision)

    async def list(
        self,
        cls: type[R],
        project: str | None = None,
        *,
        selector: str | None = None,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> RecordList[R]:
        """Records of a kind (in one project, or all), at one revision across pages."""
        match = parse_selector(selector)
        prefix = kind_prefix(cls.KIND, project)
        revision, start = _parse_continue(continue_token) if continue_token else (0, prefix)
        items: builtins.list[R] = []
        while True:
            page = await self.kv.range(
                prefix, start=start, limit=limit or LIST_PAGE, revision=revision
            )
            revision = page.revision
            for i, kv in enumerate(page.kvs):
                obj = decode(cls, kv.value, kv.mod_revision)
                if match(obj.metadata.labels):
                    items.append(obj)
                if limit and len(items) == limit:
                    rest = page.more or i + 1 < len(page.kvs)
                    token = _continue_token(revision, kv.key + "\0") if rest else None
                    return RecordList(items, str(revision), token)
            if not page.more:
                return RecordList(items, str(revision), None)
            start = page.kvs[-1].key + "\0"

    async def list_raw(
        self, prefix: str, page_size: int = LIST_PAGE
    ) -> tuple[builtins.list[KeyValue], int]:
        """Every key-value under `prefix` at one revision (paged), and that revision."""
        out: builtins.list[KeyValue] = []
        start, revision = prefix, 0
        while True:
            page = await self.kv.range(prefix, start=start, limit=page_size, revision=revision)
            out.extend(page.kvs)
            revision = page.revision
            if not page.more:
                return out, revision
            start = page.kvs[-1].key + "\0"

    async def mark_invalid(self, key: str, mod_revision: int, message: str) -> bool:
        """Set condition Invalid on a record that fails validation, if not already said.

        Works on the raw JSON, since the record cannot be parsed; spec and metadata are kept.
        Returns False when the value is not a JSON object or changed meanwhile.
        """
        kv = await self.kv.get(key)
        if kv is None or kv.mod_revision != mod_revision:
            return False
        try:
            data = load(kv.value)
        except InvalidError:
            return False
        status = data.get("status") if isinstance(data.get("status"), dict) else {}
        assert isinstance(status, dict)
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        invalid = {
            "type": "Invalid",
            "status": "True",
            "reason": "ValidationFailed",
            "message": message,
        }
        if any({k: c.get(k) for k in invalid} == invalid for c in conditions):
            return True
        invalid["lastTransitionTime"] = self._now().isoformat().replace("+00:00", "Z")
        others = [c for c in conditions if c.get("type") != "Invalid"]
        data["status"] = {**status, "phase": "Invalid", "conditions": [*others, invalid]}
        value = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        result = await self.kv.commit(Txn(compares=[(key, mod_revision)], puts=[(key, value)]))
        return result.succeeded

    # -- writes --------------------------------------------------------------------------------

    async def create(self, obj: R, *, guard: Txn | None = None) -> R:
        """Store a new record; `guard` adds compares and writes to the same transaction (and,
        with its `lease`, ties the record's key to that etcd lease)."""
        check_scope(obj)
        new = obj.model_copy(deep=True)
        meta = new.metadata
        meta.uid = self._new_uid()
        meta.generation = 1
        meta.resource_version = None
        meta.creation_timestamp = self._now()
        meta.deletion_timestamp = None
        new.status = type(obj.status)()
        key = record_key(new.KIND, meta.name, meta.project)
        txn = Txn(
            compares=[(key, 0), *(guard.compares if guard else ())],
            puts=[(key, encode(new)), *(guard.puts if guard else ())],
            deletes=list(guard.deletes) if guard else [],
            lease=guard.lease if guard else 0,
        )
        result = await self.kv.commit(txn)
        if not result.succeeded:
            if result.current.get(key) is not None:
                raise AlreadyExistsError(
                    f"{new.KIND.kind} {_where(meta.name, meta.project)} exists"
                )
            raise ConflictError(f"{new.KIND.kind} {_where(meta.name, meta.project)}: guard changed")
        meta.resource_version = str(result.revision)
        return new

    async def update(self, obj: R, *, guard: Txn | None = None) -> R:
        """Write spec and user metadata if obj's resourceVersion is still current.

        `guard` adds compares and writes to the same transaction (a quota charge on a resize).
        """
        current = await self._current(obj)
        new = current.model_copy(deep=True)
        new.spec = obj.spec.model_copy(deep=True)
        for field in ("labels", "annotations", "finalizers", "owner_references"):
            setattr(new.metadata, field, getattr(obj.metadata, field))
        if encode_part(new.spec) != encode_part(current.spec):
            new.metadata.generation = current.metadata.generation + 1
        if current.metadata.deletion_timestamp and not new.metadata.finalizers:
            return await self._remove(current)
        return await self._swap(current, new, guard)

    async def update_status(self, obj: R, *, stored: bytes | None = None) -> R:
        """Write status only, if obj's resourceVersion is still current.

        `stored` may give the value stored at that resourceVersion (an informer cache has it):
        the write then needs no read first, and spec and metadata are still kept as stored,
        since the compare-and-swap only succeeds if that value is still the current one.
        """
        if stored is None:
            current = await self._current(obj)
            new = current.model_copy(update={"status": obj.status.model_copy(deep=True)})
            return await self._swap(current, new)
        key = record_key(obj.KIND, obj.name, obj.project)
        rv = int(obj.metadata.resource_version or 0)
        txn = Txn(compares=[(key, rv)], puts=[(key, with_status(stored, obj))])
        new = obj.model_copy(update={"metadata": obj.metadata.model_copy()})
        result = self._swapped(new, await self._status_batcher.commit(txn))
        if isinstance(result, ZunError):
            raise result
        return result

    async def update_status_many(self, objs: Sequence[R]) -> builtins.list[R | ZunError]:
        """Several status writes in one round trip; each succeeds or fails on its own."""
        currents = await asyncio.gather(*(self._current_or_error(o) for o in objs))
        news: builtins.list[R | ZunError] = []
        txns: builtins.list[Txn] = []
        for obj, cur in zip(objs, currents, strict=True):
            if isinstance(cur, ZunError):
                news.append(cur)
                continue
            new = cur.model_copy(update={"status": obj.status.model_copy(deep=True)})
            news.append(new)
            txns.append(self._swap_txn(cur, new))
        results = iter(await self.kv.commit_many(txns) if txns else [])
        return [n if isinstance(n, ZunError) else self._swapped(n, next(results)) for n in news]

    async def delete(
        self,
        cls: type[R],
        name: str,
        project: str | None = None,
        *,
        resource_version: str | None = None,
        finalizer: str | None = None,
    ) -> R:
        """Delete, or mark deleting while finalizers remain; returns the record as it ends up.

        Without `resource_version` the delete is unconditional, as Kubernetes' is: a write that
        lands between the read and the swap (a controller's status write) makes it read again
        and retry, a bounded number of times; with it, that version or a conflict.
        `finalizer` is added in the same swap that marks the record deleting (the propagation
        policies' `foregroundDeletion` and `orphan`), so the record stays until it is removed."""
        for attempt in range(DELETE_ATTEMPTS):
            current = await self.get(cls, name, project)
            if resource_version and resource_version != current.metadata.resource_version:
                raise self._stale(current, resource_version)
            try:
                return await self._mark_or_remove(current, finalizer)
            except ConflictError:
                if resource_version or attempt == DELETE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _mark_or_remove(self, current: R, finalizer: str | None = None) -> R:
        meta = current.metadata
        if not meta.finalizers and finalizer is None:
            return await self._remove(current)
        if meta.deletion_timestamp and (finalizer is None or finalizer in meta.finalizers):
            return current
        new = current.model_copy(deep=True)
        new.metadata.deletion_timestamp = meta.deletion_timestamp or self._now()
        if finalizer is not None and finalizer not in meta.finalizers:
            new.metadata.finalizers.append(finalizer)
        return await self._swap(current, new)

    # -- watch ---------------------------------------------------------------------------------

    async def watch(self, prefix: str, revision: int) -> AsyncIterator[builtins.list[KVEvent]]:
        """Every change under `prefix` from `revision` on, across reconnects (with backoff)."""
        first_delay, max_backoff = self._watch_retry
        next_revision, delay = revision, first_delay
        while True:
            try:
                async for batch in self.kv.watch(prefix, next_revision):
                    delay = first_delay
                    next_revision = batch[-1].mod_revision + 1
                    yield batch
            except TransientError as exc:
                log.info(
                    "watch interrupted; resuming",
                    extra={"prefix": prefix, "revision": next_revision, "error": str(exc)},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff)

    # -- helpers -------------------------------------------------------------------------------

    async def _current(self, obj: R) -> R:
        if not obj.metadata.resource_version:
            raise InvalidError.at("metadata.resourceVersion", "required for an update")
        current = await self.get(type(obj), obj.metadata.name, obj.metadata.project)
        if current.metadata.resource_version != obj.metadata.resource_version:
            raise self._stale(current, obj.metadata.resource_version)
        return current

    async def _current_or_error(self, obj: R) -> R | ZunError:
        try:
            return await self._current(obj)
        except (ConflictError, NotFoundError, InvalidError) as exc:
            return exc

    @staticmethod
    def _stale(current: Resource, given: str) -> ConflictError:
        return ConflictError(
            f"{current.KIND.kind} {_where(current.name, current.project)}: resourceVersion "
            f"{given} is stale (now {current.metadata.resource_version}); read it again and retry"
        )

    def _swap_txn(self, current: Resource, new: Resource, guard: Txn | None = None) -> Txn:
        key = record_key(current.KIND, current.name, current.project)
        return Txn(
            compares=[
                (key, int(current.metadata.resource_version or 0)),
                *(guard.compares if guard else ()),
            ],
            puts=[(key, encode(new)), *(guard.puts if guard else ())],
        )

    def _swapped(self, new: R, result: TxnResult) -> R | ZunError:
        if not result.succeeded:
            key = record_key(new.KIND, new.name, new.project)
            now = result.current.get(key)
            return self._stale_kv(new, now)
        new.metadata.resource_version = str(result.revision)
        return new

    def _stale_kv(self, new: Resource, now: KeyValue | None) -> ZunError:
        if now is None:
            return NotFoundError(f"{new.KIND.kind} {_where(new.name, new.project)} not found")
        return ConflictError(
            f"{new.KIND.kind} {_where(new.name, new.project)} changed meanwhile "
            f"(now {now.mod_revision}); read it again and retry"
        )

    async def _swap(self, current: R, new: R, guard: Txn | None = None) -> R:
        result = self._swapped(new, await self.kv.commit(self._swap_txn(current, new, guard)))
        if isinstance(result, ZunError):
            raise result
        return result

    async def _remove(self, current: R) -> R:
        key = record_key(current.KIND, current.name, current.project)
        txn = Txn(compares=[(key, int(current.metadata.resource_version or 0))], deletes=[key])
        result = await self.kv.commit(txn)
        if not result.succeeded:
            raise self._stale_kv(current, result.current.get(key))
        return current


def encode_part(part: object) -> str:
    dump = getattr(part, "model_dump_json", None)
    return dump(by_alias=True) if dump else json.dumps(part, sort_keys=True)


def _where(name: str, project: str | None) -> str:
    return f"{project}/{name}" if project else name
