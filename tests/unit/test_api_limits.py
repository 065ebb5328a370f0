"""Bounds of the API on the in-memory store: body size (413 in both error shapes), stream
timeouts and per-token caps (429), exec and v1 log caps, no-auth mode's Host/Origin/content
type checks, and /metrics without tenant names by default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.api.errors import ApiError
from zun_controller.api.limits import ApiLimits, StreamSlots, until
from zun_controller.api.zunv1 import ZunV1Settings
from zun_controller.api.zunv1.noauth import check_listen, is_loopback
from zun_controller.drivers.runtime.base import ContainerStats, ExecResult
from zun_controller.errors import PermanentError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

P = "/apis/zun.openstack.org/v1alpha1"
V = {"OpenStack-API-Version": "container 1.40"}
LIMITS = ApiLimits(max_body_bytes=4096, stream_timeout=0.5, streams_per_token=2)


class ChattyIO:
    """Logs of many lines; exec that would print `size` bytes, cut as the runtime cuts."""

    size = 10_000

    async def logs(self, container: Container, *, tail: int | None, follow: bool):
        self.tail_asked = tail
        for i in range(tail or 100_000):
            yield f"line {i:08}\n".encode()

    async def exec(
        self, container: Container, command: list[str], *, max_output: int, max_seconds: float
    ) -> ExecResult:
        out = b"z" * self.size
        if len(out) > max_output:
            return ExecResult(-1, out[:max_output], truncated=True)
        return ExecResult(0, out)

    async def stats(self, container: Container) -> ContainerStats:
        return ContainerStats(0.0, 0, 0)


class Bed:
    def __init__(self, limits: ApiLimits = LIMITS, noauth: bool = False) -> None:
        self.kv = MemoryKV()
        self.store = RecordStore(self.kv)
        self.io = ChattyIO()
        v1 = ZunV1Settings(noauth=noauth, project="demo")
        self.app = create_app(self.store, self.io, release=False, zun_v1=v1, limits=limits)

    async def client(self, base: str = "http://localhost", **headers: str) -> httpx.AsyncClient:
        token = await Tokens(self.kv).create("t", Role.MEMBER, ["demo"])
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=base,
            headers={"Authorization": f"Bearer {token}", **V, **headers},
        )

    async def running(self, name: str) -> None:
        async with await self.client() as c:
            body = {"kind": "Container", "metadata": {"name": name}, "spec": {"image": "x"}}
            assert (await c.post(f"{P}/projects/demo/containers", json=body)).status_code == 201
        obj = await self.store.get(Container, name, "demo")
        obj.status.phase, obj.status.container_id, obj.status.host = "Running", "c0ffee", "h"
        await self.store.update_status(obj)


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    yield Bed()


def _big(name: str, size: int) -> dict[str, Any]:
    labels = {"pad": "x" * 60}
    return {"kind": "Container", "metadata": {"name": name, "labels": labels},
            "spec": {"image": "x", "command": ["y" * size]}}  # fmt: skip


async def test_a_body_over_the_limit_is_413_in_the_status_shape_and_writes_nothing(
    bed: Bed,
) -> None:
    async with await bed.client() as c:
        r = await c.post(f"{P}/projects/demo/containers", json=_big("big", 10_000))
        assert r.status_code == 413
        assert r.json()["kind"] == "Status" and r.json()["reason"] == "RequestEntityTooLarge"
        assert "4096 bytes" in r.json()["message"]
        assert (await c.get(f"{P}/projects/demo/containers/big")).status_code == 404
        ok = await c.post(f"{P}/projects/demo/containers", json=_big("small", 100))
        assert ok.status_code == 201, ok.text


async def test_a_chunked_body_that_grows_past_the_limit_is_413(bed: Bed) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"kind": "Container", "metadata": {"name": "c"}, "spec": {"image": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'"}}'

    async with await bed.client() as c:
        r = await c.post(
            f"{P}/projects/demo/containers",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["kind"] == "Status"
        assert (await c.get(f"{P}/projects/demo/containers/c")).status_code == 404


async def test_a_v1_body_over_the_limit_is_413_in_zuns_shape(bed: Bed) -> None:
    async with await bed.client() as c:
        r = await c.post("/v1/containers", json={"image": "x", "environment": {"A": "y" * 9000}})
        assert r.status_code == 413
        assert r.json()["errors"][0]["status"] == 413


async def test_a_watch_ends_at_the_servers_timeout_whatever_the_client_asks(bed: Bed) -> None:
    async with await bed.client() as c, asyncio.timeout(10):
        r = await c.get(f"{P}/projects/demo/containers?watch=true&timeoutSeconds=3600")
        assert r.status_code == 200
    assert bed.app.state.zun.slots.open("t") == 0


async def test_a_token_holding_its_streams_gets_429_with_retry_after() -> None:
    slots = StreamSlots(2)

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x"
            await asyncio.sleep(0)

    slots.take("t")
    held = slots.hold("t", endless())
    await anext(held)
    slots.take("t")
    with pytest.raises(ApiError) as caught:
        slots.take("t")
    assert caught.value.code == 429 and caught.value.headers == {"Retry-After": "5"}
    slots.take("other")  # another token is not affected
    await held.aclose()
    assert slots.open("t") == 1
    slots.take("t")


async def test_the_429_reaches_the_client_in_the_status_shape(bed: Bed) -> None:
    slots = bed.app.state.zun.slots
    slots.take("t")
    slots.take("t")
    await bed.running("web")
    async with await bed.client() as c:
        r = await c.get(f"{P}/projects/demo/containers?watch=true")
        assert r.status_code == 429 and r.headers["retry-after"] == "5"
        assert r.json()["reason"] == "TooManyRequests"
        r = await c.get(f"{P}/projects/demo/containers/web/log?follow=true")
        assert r.status_code == 429
        assert (await c.get(f"{P}/projects/demo/containers/web/log")).status_code == 200


async def test_exec_output_is_cut_at_the_limit_and_says_so() -> None:
    bed = Bed(ApiLimits(exec_output_bytes=1000))
    await bed.running("web")
    async with await bed.client() as c:
        r = await c.post(f"{P}/projects/demo/containers/web/exec", json={"command": ["cat"]})
        body = r.json()
        assert len(body["output"]) == 1000 and body["truncated"] is True
        assert body["exitCode"] == -1 and body["timedOut"] is False
        uid = (await bed.store.get(Container, "web", "demo")).metadata.uid
        v1 = await c.post(f"/v1/containers/{uid}/execute", params={"command": "cat"})
        assert v1.status_code == 200, v1.text
        assert v1.json()["output"].endswith("command stopped after 60 s]\n")


async def test_v1_logs_ask_a_bounded_tail_and_keep_the_newest_bytes() -> None:
    bed = Bed(ApiLimits(log_bytes=1000, log_lines=500))
    await bed.running("web")
    uid = (await bed.store.get(Container, "web", "demo")).metadata.uid
    async with await bed.client() as c:
        r = await c.get(f"/v1/containers/{uid}/logs")
    assert bed.io.tail_asked == 500
    text = r.json()
    assert len(text) <= 1000 and text.endswith("line 00000499\n")


@pytest.mark.parametrize(
    ("headers", "base", "code"),
    [
        ({}, "http://localhost", 200),
        ({}, "http://127.0.0.1:7070", 200),
        ({}, "http://[::1]:7070", 200),
        ({}, "http://attacker.example:7070", 403),
        ({"origin": "http://evil.example"}, "http://127.0.0.1", 403),
        ({"origin": "http://localhost:3000"}, "http://127.0.0.1", 200),
        ({"sec-fetch-site": "cross-site"}, "http://127.0.0.1", 403),
    ],
)
async def test_noauth_answers_only_loopback_hosts_and_origins(
    headers: dict[str, str], base: str, code: int
) -> None:
    bed = Bed(noauth=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bed.app), base_url=base, headers={**V, **headers}
    ) as c:
        r = await c.get("/v1/containers")
    assert r.status_code == code, r.text
    if code != 200:
        assert r.json()["errors"][0]["status"] == code


async def test_noauth_needs_json_bodies_and_writes_nothing_else() -> None:
    bed = Bed(noauth=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=bed.app), base_url="http://127.0.0.1", headers=V
    ) as c:
        form = await c.post("/v1/containers", content=b'{"image": "x"}',
                            headers={"content-type": "text/plain"})  # fmt: skip
        assert form.status_code == 415
        assert (await c.get("/v1/containers")).json()["containers"] == []
        ok = await c.post("/v1/containers", json={"image": "x", "name": "web1"})
        assert ok.status_code == 202, ok.text


def test_noauth_refuses_to_listen_beyond_loopback() -> None:
    check_listen("127.0.0.1")
    check_listen("::1")
    for address in ("0.0.0.0", "::", "", "10.0.0.5"):
        with pytest.raises(PermanentError, match="NoAuthNotLoopback"):
            check_listen(address)
    assert is_loopback("127.0.0.2") and not is_loopback("127.0.0.1.nip.io")


def test_limits_come_from_the_environment_and_refuse_nonsense() -> None:
    limits = ApiLimits.from_env({"ZUN_API_MAX_BODY_BYTES": "2048", "ZUN_API_EXEC_TIMEOUT": "5"})
    assert (limits.max_body_bytes, limits.exec_timeout) == (2048, 5.0)
    with pytest.raises(ValueError, match="ZUN_API_STREAMS_PER_TOKEN"):
        ApiLimits.from_env({"ZUN_API_STREAMS_PER_TOKEN": "0"})


def test_metrics_name_no_tenant_record_by_default() -> None:
    metrics = Metrics()
    metrics.add_record_counts(lambda: [("Container", "Running", "acme-secret", 2)])
    metrics.container_cpu.labels(*metrics.record_labels("acme", "payroll-db", "u-1")).set(1)
    text = metrics.render().decode()
    assert "acme" not in text and "payroll-db" not in text
    assert 'zun_records{kind="Container",phase="Running",project=""} 2.0' in text
    named = Metrics(tenant_names=True)
    assert named.record_labels("acme", "payroll-db", "u-1") == ("acme", "payroll-db")


async def test_a_token_running_its_execs_gets_429_and_others_do_not() -> None:
    bed = Bed(ApiLimits(execs_per_token=2))
    release, started = asyncio.Event(), asyncio.Semaphore(0)
    plain = bed.io.exec

    async def slow(container: Container, command: list[str], **bounds: Any) -> ExecResult:
        if command == ["wait"]:
            started.release()
            await release.wait()
        return await plain(container, command, **bounds)

    bed.io.exec = slow  # type: ignore[method-assign]
    await bed.running("web")
    path = f"{P}/projects/demo/containers/web/exec"
    async with await bed.client() as c:
        waiting = [asyncio.create_task(c.post(path, json={"command": ["wait"]})) for _ in range(2)]
        for _ in waiting:
            await started.acquire()
        third = await c.post(path, json={"command": ["ls"]})
        assert third.status_code == 429 and "2 execs" in third.json()["message"]
        release.set()
        assert [(await w).status_code for w in waiting] == [200, 200]
        assert (await c.post(path, json={"command": ["ls"]})).status_code == 200
    assert bed.app.state.zun.exec_slots.open("t") == 0


async def test_until_ends_a_silent_stream_at_its_deadline_and_closes_it() -> None:
    closed = asyncio.Event()

    async def silent() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await asyncio.Event().wait()
            yield b"never"
        finally:
            closed.set()

    async with asyncio.timeout(5):
        got = [chunk async for chunk in until(silent(), 0.2)]
    assert got == [b"first"] and closed.is_set()
