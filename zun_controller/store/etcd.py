"""`EtcdKV`: the KV port on a real etcd v3 server, over gRPC.

The client is aetcd (asyncio, built against current protobuf; see store/README.md for the
measurement behind the choice). We use its connection and generated gRPC stubs, and issue the
requests ourselves where aetcd's helpers stop short: ranges with limit and revision, nested
transactions (many independent compare-and-swaps in one round trip) and a watch stream that
reports compaction and disconnection as errors we can act on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aetcd
import grpc
from aetcd import rpc

from zun_controller.errors import CompactedError, TransientError, ZunError
from zun_controller.store.kv import EventType, KeyValue, KVEvent, RangeResult, Txn, TxnResult

T = TypeVar("T")
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
}


def _range_end(prefix: str) -> bytes:
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision)


def translate(exc: BaseException) -> ZunError:
    """One etcd/gRPC failure as the package's error hierarchy."""
    if isinstance(exc, grpc.aio.AioRpcError):
        details = exc.details() or ""
        if "compacted" in details:
            return CompactedError(0)
        if exc.code() in _TRANSIENT:
            return TransientError(f"etcd unavailable: {exc.code().name}: {details}")
        return ZunError(f"etcd error {exc.code().name}: {details}")
    if isinstance(exc, aetcd.exceptions.ClientError | asyncio.TimeoutError | OSError):
        return TransientError(f"etcd unavailable: {exc}")
    return ZunError(str(exc))


#: gRPC's default receive limit (4 MiB) is smaller than a list of one kind soon gets (a
#: project's Events or Containers); etcd's Go client receives up to 2 GiB, and so do we. Lists
#: are paged as well (RecordStore), so one response stays near a page of records.
MAX_RECEIVE_BYTES = 2**31 - 1


class EtcdKV:
    """The KV port on etcd. `timeout` bounds every unary call so a stalled server is an error."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2379, timeout: float = 5.0) -> None:
        self.endpoint = f"{host}:{port}"
        self._timeout = timeout
        self._client = aetcd.Client(
            host=host,
            port=port,
            timeout=int(max(1, timeout)),
            options={"grpc.max_receive_message_length": MAX_RECEIVE_BYTES},
        )

    @classmethod
    def from_url(cls, url: str, timeout: float = 5.0) -> EtcdKV:
        hostport = url.split("://", 1)[-1].rstrip("/")
        host, _, port = hostport.rpartition(":")
        return cls(host or "127.0.0.1", int(port or 2379), timeout)

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            await self._client.connect()
            return await fn()
        except ZunError:
            raise
        except (grpc.aio.AioRpcError, aetcd.exceptions.ClientError, OSError, TimeoutError) as exc:
            raise translate(exc) from exc

    async def get(self, key: str) -> KeyValue | None:
        result = await self._range_request(rpc.RangeRequest(key=key.encode()))
        return result.kvs[0] if result.kvs else None

    async def range(
        self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        request = rpc.RangeRequest(
            key=(start or prefix).encode(), range_end=_range_end(prefix), limit=limit
        )
        request.revision = revision
        return await self._range_request(request)

    async def _range_request(self, request: Any) -> RangeResult:
        response = await self._call(
            lambda: self._client.kvstub.Range(request, timeout=self._timeout)
        )
        kvs = [_kv(kv) for kv in response.kvs]
        return RangeResult(kvs, response.header.revision, response.more)

    def _txn_request(self, txn: Txn) -> Any:
        compares = [
            rpc.Compare(
                key=key.encode(),
                result=rpc.Compare.EQUAL,
                target=rpc.Compare.MOD,
                mod_revision=expected,
            )
            for key, expected in txn.compares
        ]
        success = [
            rpc.RequestOp(
                request_put=rpc.PutRequest(key=key.encode(), value=value, lease=txn.lease)
            )
            for key, value in txn.puts
        ]
        success += [
            rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key.encode()))
            for key in txn.deletes
        ]
        failure = [
            rpc.RequestOp(request_range=rpc.RangeRequest(key=key.encode()))
            for key, _ in txn.compares
        ]
        return rpc.TxnRequest(compare=compares, success=success, failure=failure)

    @staticmethod
    def _txn_result(txn: Txn, response: Any, revision: int) -> TxnResult:
        if response.succeeded:
            return TxnResult(True, revision)
        current: dict[str, KeyValue | None] = {key: None for key, _ in txn.compares}
        for op in response.responses:
            for kv in op.response_range.kvs:
                current[kv.key.decode()] = _kv(kv)
        return TxnResult(False, revision, current)

    async def commit(self, txn: Txn) -> TxnResult:
        request = self._txn_request(txn)
        response = await self._call(lambda: self._client.kvstub.Txn(request, timeout=self._timeout))
        return self._txn_result(txn, response, response.header.revision)

    async def commit_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        if len(txns) == 1:
            return [await self.commit(txns[0])]
        outer = rpc.TxnRequest(
            success=[rpc.RequestOp(request_txn=self._txn_request(t)) for t in txns]
        )
        response = await self._call(lambda: self._client.kvstub.Txn(outer, timeout=self._timeout))
        revision = response.header.revision
        return [
            self._txn_result(txn, op.response_txn, revision)
            for txn, op in zip(txns, response.responses, strict=True)
        ]

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[KVEvent]]:
        await self._call(self._client.connect)
        stub = rpc.WatchStub(self._client.channel)
        create = rpc.WatchCreateRequest(
            key=prefix.encode(), range_end=_range_end(prefix), progress_notify=True
        )
        create.start_revision = start_revision
        stop = asyncio.Event()

        async def requests() -> AsyncIterator[Any]:
            yield rpc.WatchRequest(create_request=create)
            await stop.wait()

        call = stub.Watch(requests())
        try:
            async for response in self._responses(call):
                if response.events:
                    yield [self._event(ev) for ev in response.events]
        finally:
            stop.set()
            call.cancel()

    async def _responses(self, call: Any) -> AsyncIterator[Any]:
        try:
            async for response in call:
                if response.compact_revision:
                    raise CompactedError(response.compact_revision)
                if response.canceled:
                    raise TransientError(f"watch canceled: {response.cancel_reason}")
                yield response
        except grpc.aio.AioRpcError as exc:
            raise translate(exc) from exc
        raise TransientError("watch stream ended")

    @staticmethod
    def _event(ev: Any) -> KVEvent:
        kind = EventType.DELETE if ev.type == rpc.Event.DELETE else EventType.PUT
        return KVEvent(kind, ev.kv.key.decode(), ev.kv.value, ev.kv.mod_revision)

    async def delete_prefix(self, prefix: str) -> int:
        request = rpc.DeleteRangeRequest(key=prefix.encode(), range_end=_range_end(prefix))
        reply = await self._call(
            lambda: self._client.kvstub.DeleteRange(request, timeout=self._timeout)
        )
        return int(reply.deleted)

    async def revision(self) -> int:
        return (await self.range("/", limit=1)).revision

    async def compact(self, revision: int) -> None:
        request = rpc.CompactionRequest(revision=revision, physical=True)
        await self._call(lambda: self._client.kvstub.Compact(request, timeout=self._timeout))

    async def grant_lease(self, ttl: int) -> int:
        request = rpc.LeaseGrantRequest(TTL=ttl)
        reply = await self._call(
            lambda: self._client.leasestub.LeaseGrant(request, timeout=self._timeout)
        )
        return int(reply.ID)

    async def keep_alive(self, lease: int) -> int:
        async def refresh() -> int:
            call = self._client.leasestub.LeaseKeepAlive(
                iter([rpc.LeaseKeepAliveRequest(ID=lease)]), timeout=self._timeout
            )
            async for reply in call:
                return int(reply.TTL)
            return 0

        return await self._call(refresh)

    async def revoke_lease(self, lease: int) -> None:
        request = rpc.LeaseRevokeRequest(ID=lease)
        try:
            await self._call(
                lambda: self._client.leasestub.LeaseRevoke(request, timeout=self._timeout)
            )
        except ZunError as exc:
            if "not found" not in str(exc):
                raise

    async def close(self) -> None:
        await self._client.close()
