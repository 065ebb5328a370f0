"""The Runtime contract: every test runs on `FakeRuntime` and on a real Docker engine.

The `runtime` fixture yields one or the other; the docker param (marked e2e) uses the machine's
main engine with the zun-test images (tests/e2e/testbed). Everything a test creates carries
`zun-testbed=1` plus this run's label and is removed in teardown, so test sessions sharing the
engine do not disturb each other. Where the real engine converges after a call returns (log
lines, health, restarts, a server listening), tests poll it within a bound.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from docker import errors as docker_errors

from zun_controller.drivers.runtime.base import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    Healthcheck,
    Mount,
    PortMapping,
    Runtime,
    RuntimeEvent,
)
from zun_controller.drivers.runtime.docker import (
    DockerRuntime,
    _translate_api_error,
    container_stats,
)
from zun_controller.drivers.runtime.fake import FakeRuntime
from zun_controller.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    StaleRuntimeStateError,
    TransientError,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from testbed.docker import (  # tests/e2e/testbed, put on the path above
    HTTP_PORT,
    HTTPD_BROKEN,
    HTTPD_V1,
    HTTPD_V2,
    TESTBED_LABELS,
    ensure_dockerd,
    ensure_test_images,
    start_extra_dockerd,
    stop_extra_dockerd,
)

T = TypeVar("T")
RUN_ID = uuid.uuid4().hex[:8]
LABELS = {**TESTBED_LABELS, "zun-testbed.run": RUN_ID}
EXTRA_ENGINE = "rtc"  # a second engine of our own, stopped to see the event stream end
MIB = 1024 * 1024
#: Bound on what the real engine does after a call returns (a server listening, a restart).
CONVERGE_S = 20.0
WGET = ["timeout", "5", "wget", "-q", "-O-"]  # busybox wget -T segfaults: bound it with timeout


def seeded_fake(name: str = "fake") -> FakeRuntime:
    """A FakeRuntime holding the zun-test images, printing and failing as they do."""
    fake = FakeRuntime(name)
    for image, version in ((HTTPD_V1, "v1"), (HTTPD_V2, "v2")):
        output = f"zun-test httpd {version} listening on :{HTTP_PORT}\n".encode()
        fake.add_image(image, labels={"org.zun-test.version": version}, output=output)
    fake.add_image(
        HTTPD_BROKEN,
        labels={"org.zun-test.version": "broken"},
        output=b"zun-test httpd broken: refusing to start (exit 3)\n",
        exit_code=3,
    )
    return fake


@pytest.fixture(scope="session")
def docker_url() -> str:
    url = ensure_dockerd()
    ensure_test_images(url)
    return url


async def remove_labelled(runtime: Runtime) -> None:
    for container in await runtime.list_containers(LABELS):
        await runtime.remove(container.id)
    for network in await runtime.list_networks(LABELS):
        await runtime.remove_network(network.name, LABELS)
    for volume in await runtime.list_volumes(LABELS):
        await runtime.remove_volume(volume.name, LABELS)


@pytest.fixture(params=["fake", pytest.param("docker", marks=pytest.mark.e2e)])
async def runtime(request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    """The Runtime port, once in memory and once on the machine's Docker engine."""
    rt: Runtime
    if request.param == "fake":
        rt = seeded_fake()
    else:
        rt = DockerRuntime("main", request.getfixturevalue("docker_url"), timeout=30.0)
    try:
        yield rt
    finally:
        await remove_labelled(rt)
        await rt.close()


@pytest.fixture(params=["fake", pytest.param("docker", marks=pytest.mark.e2e)])
async def vanishing(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Runtime, Callable[[], Awaitable[None]]]]:
    """A runtime and a function that makes its engine go away (docker: a second engine)."""
    if request.param == "fake":
        fake = seeded_fake()

        async def unplug() -> None:
            fake.unreachable = True

        yield fake, unplug
        return
    url = await asyncio.to_thread(start_extra_dockerd, EXTRA_ENGINE)
    real = DockerRuntime(EXTRA_ENGINE, url, timeout=5.0)
    try:
        yield real, lambda: asyncio.to_thread(stop_extra_dockerd, EXTRA_ENGINE)
    finally:
        await real.close()
        await asyncio.to_thread(stop_extra_dockerd, EXTRA_ENGINE)
        gc.collect()  # the sockets of failed connects (below) are reported in this test


def is_docker(runtime: Runtime) -> bool:
    return isinstance(runtime, DockerRuntime)


def name(what: str) -> str:
    return f"zt-{RUN_ID}-{what}"


def config(what: str, image: str = HTTPD_V1, **kwargs: Any) -> ContainerConfig:
    labels = {**LABELS, **kwargs.pop("labels", {})}
    return ContainerConfig(name=name(what), image=image, labels=labels, init=True, **kwargs)


async def running(rt: Runtime, what: str, /, **kwargs: Any) -> ContainerState:
    created = await rt.create(config(what, **kwargs))
    await rt.start(created.id)
    return await inspect(rt, created.id)


async def inspect(runtime: Runtime, name_or_id: str) -> ContainerState:
    state = await runtime.inspect(name_or_id)
    assert state is not None, name_or_id
    return state


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Poll `probe` until `ok` holds, within CONVERGE_S (the real engine converges after
    a call returns: a server starts listening, a crashed process is restarted)."""
    deadline = time.monotonic() + CONVERGE_S
    while not ok(value := await probe()):
        assert time.monotonic() < deadline, f"did not converge: {value!r}"
        await asyncio.sleep(0.1)
    return value


async def exec_until_ok(runtime: Runtime, container_id: str, command: list[str]) -> ExecResult:
    return await eventually(lambda: runtime.exec(container_id, command), lambda r: r.exit_code == 0)


async def read_logs(runtime: Runtime, container_id: str, tail: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in runtime.logs(container_id, tail=tail)])


async def aclose(stream: AsyncIterator[Any]) -> None:
    """Close a stream the port returns (typed AsyncIterator, which has no aclose)."""
    closer = getattr(stream, "aclose", None)
    assert closer is not None, f"{stream!r} cannot be closed"
    await closer()


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ------------------------------------------------------------------------------ containers


async def test_create_then_start_runs_and_serves_on_a_loopback_port(runtime: Runtime) -> None:
    created = await runtime.create(config("web", ports=(PortMapping(HTTP_PORT),)))
    assert created.status is ContainerStatus.CREATED
    assert (created.name, created.image) == (name("web"), HTTPD_V1)
    assert created.labels.items() >= LABELS.items()  # plus the image's own labels
    assert created.started_at is None and created.ports == () and created.exit_code is None

    await runtime.start(created.id)
    state = await inspect(runtime, name("web"))
    assert state.id == created.id and state.status is ContainerStatus.RUNNING
    assert state.started_at is not None and state.started_at.tzinfo is not None
    assert state.finished_at is None
    [port] = state.ports
    assert (port.container_port, port.protocol, port.host_ip) == (HTTP_PORT, "tcp", "127.0.0.1")
    assert port.host_port > 0
    if is_docker(runtime):
        async with httpx.AsyncClient(timeout=2.0) as http:
            url = f"http://127.0.0.1:{port.host_port}/"
            resp = await eventually(lambda: _get(http, url), lambda r: r is not None)
        assert resp is not None and "zun-test httpd v1" in resp.text


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await http.get(url)
    except httpx.TransportError:
        return None


async def test_list_containers_selects_by_every_label(runtime: Runtime) -> None:
    for what, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        await runtime.create(config(what, labels={"tier": tier}, cpus=0.5, memory=64 * MIB))

    web = await runtime.list_containers({**LABELS, "tier": "web"})
    assert sorted(c.name for c in web) == [name("a"), name("b")]
    assert {(c.status, c.cpus, c.memory) for c in web} == {(ContainerStatus.CREATED, 0.5, 64 * MIB)}
    assert len(await runtime.list_containers(LABELS)) == 3
    assert await runtime.list_containers({**LABELS, "tier": "none"}) == []


async def test_lifecycle_calls_are_idempotent(runtime: Runtime) -> None:
    state = await running(runtime, "life")
    await runtime.start(state.id)
    assert (await inspect(runtime, state.id)).status is ContainerStatus.RUNNING

    for _ in range(2):
        await runtime.pause(state.id)
        assert (await inspect(runtime, state.id)).status is ContainerStatus.PAUSED
    with pytest.raises(ConflictError):
        await runtime.start(state.id)  # Docker: unpause it instead
    for _ in range(2):
        await runtime.unpause(state.id)
        assert (await inspect(runtime, state.id)).status is ContainerStatus.RUNNING

    started = time.monotonic()
    for _ in range(2):
        await runtime.stop(state.id, grace=5)
    assert time.monotonic() - started < 5  # init=True: SIGTERM stops it, no SIGKILL wait
    stopped = await inspect(runtime, state.id)
    assert (stopped.status, stopped.exit_code) == (ContainerStatus.EXITED, 0)
    assert stopped.finished_at is not None and stopped.started_at is not None
    assert stopped.finished_at >= stopped.started_at and stopped.ports == ()
    with pytest.raises(ConflictError):
        await runtime.pause(state.id)

    await runtime.start(state.id)
    assert (await inspect(runtime, state.id)).status is ContainerStatus.RUNNING


async def test_remove_is_idempotent(runtime: Runtime) -> None:
    state = await running(runtime, "gone")
    await runtime.remove(state.id)
    assert await runtime.inspect(state.id) is None
    assert await runtime.inspect(name("gone")) is None
    await runtime.remove(state.id)
    await runtime.remove(name("never-was"))
    assert await runtime.list_containers(LABELS) == []
    with pytest.raises(NotFoundError):
        await runtime.start(state.id)


async def test_a_taken_name_conflicts(runtime: Runtime) -> None:
    await runtime.create(config("twin"))
    with pytest.raises(ConflictError):
        await runtime.create(config("twin", image=HTTPD_V2))
    [only] = await runtime.list_containers(LABELS)
    assert only.image == HTTPD_V1


async def test_a_missing_image_is_permanent_and_not_pulled(runtime: Runtime) -> None:
    assert await runtime.image_exists(HTTPD_V1)
    assert not await runtime.image_exists("zun-test/does-not-exist:1")
    with pytest.raises(PermanentError) as caught:
        await runtime.create(config("noimage", image="zun-test/does-not-exist:1"))
    assert caught.value.reason == "ImageNotFound"
    assert await runtime.list_containers(LABELS) == []


async def test_an_unknown_oci_runtime_is_permanent_and_runc_works(runtime: Runtime) -> None:
    with pytest.raises(PermanentError) as caught:
        await runtime.create(config("nort", runtime="no-such-runtime"))
    assert caught.value.reason == "RuntimeNotFound"
    state = await running(runtime, "runc", runtime="runc")
    assert state.status is ContainerStatus.RUNNING


async def test_invalid_settings_are_permanent(runtime: Runtime) -> None:
    for bad in (config("tiny", memory=1024), ContainerConfig("x", HTTPD_V1, LABELS)):
        with pytest.raises(PermanentError) as caught:
            await runtime.create(bad)  # below 6 MiB; a one-character name
        assert caught.value.reason == "InvalidConfig"


async def test_a_taken_host_port_fails_the_start_permanently(runtime: Runtime) -> None:
    port = PortMapping(HTTP_PORT, host_port=free_loopback_port())
    first = await running(runtime, "port-1", ports=(port,))
    assert [p.host_port for p in first.ports] == [port.host_port]
    second = await runtime.create(config("port-2", ports=(port,)))
    with pytest.raises(PermanentError, match="already allocated"):
        await runtime.start(second.id)
    failed = await inspect(runtime, second.id)
    assert failed.status is ContainerStatus.CREATED and "already allocated" in failed.error
    assert failed.exit_code  # Docker says 128


async def test_update_resources_changes_what_inspect_sees(runtime: Runtime) -> None:
    state = await running(runtime, "limits", cpus=0.5, memory=64 * MIB)
    assert (state.cpus, state.memory) == (0.5, 64 * MIB)
    await runtime.update_resources(state.id, 1.0, 128 * MIB)
    updated = await inspect(runtime, state.id)
    assert (updated.cpus, updated.memory) == (1.0, 128 * MIB)
    await runtime.update_resources(state.id, None, 32 * MIB)  # None: leave as it is
    await runtime.update_resources(state.id, None, None)
    updated = await inspect(runtime, state.id)
    assert (updated.cpus, updated.memory) == (1.0, 32 * MIB)
    assert updated.status is ContainerStatus.RUNNING


async def test_a_crashing_process_exits_and_restarts_by_policy(runtime: Runtime) -> None:
    broken = await running(runtime, "broken", image=HTTPD_BROKEN)
    exited = await eventually(
        lambda: inspect(runtime, broken.id), lambda s: s.status is ContainerStatus.EXITED
    )
    assert exited.exit_code == 3
    assert b"refusing to start" in await read_logs(runtime, broken.id)

    looping = await running(runtime, "looping", image=HTTPD_BROKEN, restart_policy="on-failure")
    restarted = await eventually(
        lambda: inspect(runtime, looping.id), lambda s: s.restart_count >= 1
    )
    assert restarted.status in (
        ContainerStatus.RESTARTING,
        ContainerStatus.RUNNING,
        ContainerStatus.EXITED,
    )


async def test_health_is_reported(runtime: Runtime) -> None:
    check = Healthcheck(("wget", "-q", "-O-", f"http://127.0.0.1:{HTTP_PORT}/healthz"), 0.5)
    state = await running(runtime, "health", healthcheck=check)
    assert state.health in ("starting", "healthy")
    if is_docker(runtime):
        await eventually(lambda: inspect(runtime, state.id), lambda s: s.health == "healthy")
    plain = await running(runtime, "nohealth")
    assert plain.health is None


# ------------------------------------------------------------------------------ networks


async def test_containers_reach_each_other_by_name_on_their_network_only(
    runtime: Runtime,
) -> None:
    net_a = await runtime.ensure_network(name("net-a"), LABELS)
    assert (await runtime.ensure_network(name("net-a"), LABELS)).id == net_a.id
    net_b = await runtime.ensure_network(name("net-b"), LABELS, internal=True)
    assert sorted(n.name for n in await runtime.list_networks(LABELS)) == [
        name("net-a"),
        name("net-b"),
    ]
    a1 = await running(runtime, "a1", networks=(net_a.name,))
    a2 = await running(
        runtime, "a2", networks=(net_a.name,), network_aliases=("web",), hostname="peer"
    )
    b1 = await running(runtime, "b1", networks=(net_b.name,))
    ab = await running(runtime, "ab", networks=(net_b.name, net_a.name))
    assert set(a2.ips) == {net_a.name} and set(ab.ips) == {net_a.name, net_b.name}

    for host in (name("a2"), "web"):
        result = await exec_until_ok(runtime, a1.id, [*WGET, f"http://{host}:{HTTP_PORT}/"])
        assert b"host=peer" in result.output
    assert (await exec_until_ok(runtime, ab.id, [*WGET, f"http://web:{HTTP_PORT}/"])).exit_code == 0
    apart = await runtime.exec(b1.id, [*WGET, f"http://{name('a2')}:{HTTP_PORT}/"])
    assert apart.exit_code != 0

    with pytest.raises(ConflictError):
        await runtime.remove_network(net_a.name, LABELS)
    for container in (a1, a2, ab):
        await runtime.remove(container.id)
    await runtime.remove_network(net_a.name, LABELS)
    await runtime.remove_network(net_a.name, LABELS)
    assert [n.name for n in await runtime.list_networks(LABELS)] == [net_b.name]
    with pytest.raises(NotFoundError):
        await runtime.create(config("lost", networks=(net_a.name,)))


# ------------------------------------------------------------------------------ volumes


async def test_a_volume_outlives_its_container_and_is_not_removed_in_use(
    runtime: Runtime,
) -> None:
    volume = await runtime.ensure_volume(name("vol"), LABELS)
    assert (await runtime.ensure_volume(name("vol"), LABELS)).name == volume.name
    assert [v.name for v in await runtime.list_volumes(LABELS)] == [volume.name]
    mounts = (Mount(volume.name, "/data"),)

    writer = await running(runtime, "writer", mounts=mounts)
    wrote = await runtime.exec(writer.id, ["sh", "-c", "echo hello > /data/greeting"])
    assert wrote.exit_code == 0
    with pytest.raises(ConflictError):
        await runtime.remove_volume(volume.name, LABELS)
    await runtime.remove(writer.id)

    reader = await running(runtime, "reader", mounts=mounts)
    read = await runtime.exec(reader.id, ["cat", "/data/greeting"])
    assert (read.exit_code, read.output) == (0, b"hello\n")
    await runtime.remove(reader.id)
    await runtime.remove_volume(volume.name, LABELS)
    await runtime.remove_volume(volume.name, LABELS)
    assert await runtime.list_volumes(LABELS) == []


# ------------------------------------------------------------------------------ ownership


async def test_a_network_or_volume_not_carrying_the_callers_labels_is_never_adopted_or_removed(
    runtime: Runtime,
) -> None:
    theirs = {**LABELS, "zun.openstack.org/project": "theirs", "zun.openstack.org/uid": "u1"}
    mine = {**LABELS, "zun.openstack.org/project": "mine", "zun.openstack.org/uid": "u2"}
    net = await runtime.ensure_network(name("owned-net"), theirs)
    vol = await runtime.ensure_volume(name("owned-vol"), theirs)
    with pytest.raises(ConflictError, match="is not ours"):
        await runtime.ensure_network(name("owned-net"), mine)
    with pytest.raises(ConflictError, match="is not ours"):
        await runtime.ensure_volume(name("owned-vol"), mine)
    await runtime.remove_network(net.name, mine)
    await runtime.remove_volume(vol.name, mine)
    assert [n.labels for n in await runtime.list_networks(LABELS)] == [theirs]
    assert [v.labels for v in await runtime.list_volumes(LABELS)] == [theirs]
    # the owner's own labels (a subset of what the object carries) still find it theirs
    assert (await runtime.ensure_network(net.name, theirs)).id == net.id
    await runtime.remove_network(net.name, theirs)
    await runtime.remove_volume(vol.name, theirs)
    assert await runtime.list_networks(LABELS) == []
    assert await runtime.list_volumes(LABELS) == []


# ------------------------------------------------------------------------------ streams


async def _collect(
    events: AsyncIterator[RuntimeEvent], container_id: str, wanted: set[str]
) -> list[RuntimeEvent]:
    seen: list[RuntimeEvent] = []
    async with asyncio.timeout(15):
        async for event in events:
            seen.append(event)
            if wanted <= {e.action for e in seen if e.container_id == container_id}:
                return seen
    raise AssertionError(f"the stream ended after {seen}")


async def event_threads_gone() -> None:
    """Closing a Docker event stream shuts its socket down: the reading thread ends."""

    async def alive() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("zun-docker-events")]

    await eventually(alive, lambda names: names == [])


async def next_event(events: AsyncIterator[RuntimeEvent]) -> RuntimeEvent:
    return await anext(events)


async def test_events_arrive_for_labelled_containers_only(runtime: Runtime) -> None:
    watched_labels = {**LABELS, "tier": "watched"}
    events = runtime.events(watched_labels)
    try:
        watched = await running(runtime, "watched", labels={"tier": "watched"})
        other = await running(runtime, "other")
        await runtime.pause(watched.id)
        await runtime.stop(watched.id, grace=5)
        seen = await _collect(events, watched.id, {"start", "pause", "die"})
    finally:
        await aclose(events)
    assert all(e.container_id != other.id for e in seen)
    assert all(e.labels.items() >= watched_labels.items() for e in seen)
    actions = [e.action for e in seen]
    assert actions.index("start") < actions.index("pause") < actions.index("die")
    await event_threads_gone()


async def test_cancelling_an_event_reader_closes_its_stream(runtime: Runtime) -> None:
    events = runtime.events(LABELS)
    reader = asyncio.create_task(next_event(events))
    await asyncio.sleep(0.2)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await aclose(events)
    await event_threads_gone()


# docker 7.2's UnixHTTPConnection.connect() does not close its socket when connect() fails
# (engine gone): Python closes it when collected, with a ResourceWarning.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)
async def test_events_and_calls_fail_transiently_when_the_engine_goes_away(
    vanishing: tuple[Runtime, Callable[[], Awaitable[None]]],
) -> None:
    runtime, go_away = vanishing
    assert (await runtime.info()).cpus > 0
    events = runtime.events({})
    reader = asyncio.create_task(next_event(events))
    await asyncio.sleep(0.3)  # the stream is open
    await go_away()
    with pytest.raises(TransientError):
        async with asyncio.timeout(15):
            await reader
    started = time.monotonic()
    with pytest.raises(TransientError):
        await runtime.info()
    assert time.monotonic() - started < 15


async def test_logs_hold_the_process_output_and_follow_ends_with_it(runtime: Runtime) -> None:
    state = await running(runtime, "logs")
    logs = await eventually(lambda: read_logs(runtime, state.id), lambda b: b"listening" in b)
    assert f"listening on :{HTTP_PORT}".encode() in logs
    assert (await read_logs(runtime, state.id, tail=1)).count(b"\n") == 1

    follow = runtime.logs(state.id, follow=True)
    first = await anext(follow)
    assert b"listening" in first
    await runtime.stop(state.id, grace=5)
    async with asyncio.timeout(10):
        rest = [chunk async for chunk in follow]
    assert all(isinstance(chunk, bytes) for chunk in rest)

    with pytest.raises(NotFoundError):
        await read_logs(runtime, name("nobody"))


async def test_exec_returns_exit_code_output_and_sees_the_config(runtime: Runtime) -> None:
    state = await running(runtime, "exec", env={"GREETING": "hi"}, workdir="/tmp", hostname="box")
    result = await runtime.exec(state.id, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.exit_code == 3
    assert b"out\n" in result.output and b"err\n" in result.output
    seen = await runtime.exec(state.id, ["sh", "-c", "echo $GREETING; pwd; hostname"])
    assert (seen.exit_code, seen.output) == (0, b"hi\n/tmp\nbox\n")
    await runtime.stop(state.id, grace=5)
    with pytest.raises(ConflictError):
        await runtime.exec(state.id, ["true"])


async def test_stats_and_info_report_numbers(runtime: Runtime) -> None:
    state = await running(runtime, "stats", memory=64 * MIB)
    stats = await runtime.stats(state.id)
    assert stats.memory_bytes > 0 and stats.memory_limit == 64 * MIB
    assert stats.cpu_percent >= 0
    assert min(stats.block_read, stats.block_write, stats.net_rx, stats.net_tx) >= 0
    info = await runtime.info()
    assert info.version and info.api_version and info.cpus > 0 and info.memory > 0
    assert "runc" in info.runtimes and info.containers >= 1


# ------------------------------------------------------------------------------ fake only


async def test_the_fakes_hooks_play_the_engines_part() -> None:
    fake = seeded_fake()
    events = fake.events(LABELS)
    fake.fail_next("start", TransientError("injected"))
    state = await fake.create(config("hooked", restart_policy="on-failure"))
    with pytest.raises(TransientError, match="injected"):
        await fake.start(state.id)
    await fake.start(state.id)
    fake.crash(state.id, exit_code=2)  # on-failure: restarted
    restarted = await inspect(fake, state.id)
    assert (restarted.status, restarted.restart_count) == (ContainerStatus.RUNNING, 1)
    fake.set_health(state.id, "unhealthy")
    assert (await inspect(fake, state.id)).health == "unhealthy"
    seen = await _collect(events, state.id, {"health_status: unhealthy"})
    assert [e.action for e in seen] == [
        "create",
        "start",
        "die",
        "start",
        "health_status: unhealthy",
    ]
    fake.unreachable = True
    with pytest.raises(TransientError):
        await next_event(events)
    with pytest.raises(TransientError):
        await fake.inspect(state.id)
    with pytest.raises(ValueError, match="no method"):
        fake.fail_next("strat", TransientError("typo"))


# ------------------------------------------------------------------------------ docker only


def test_docker_stats_sum_block_io_over_devices_and_network_io_over_interfaces() -> None:
    """cgroup v1 spells the operations "Read"/"Write", v2 "read"/"write"; both count."""
    raw = {
        "memory_stats": {"usage": 10 * MIB, "limit": 64 * MIB, "stats": {"inactive_file": MIB}},
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 512},
                {"major": 8, "minor": 16, "op": "read", "value": 1024},
                {"major": 8, "minor": 0, "op": "Total", "value": 4608},
            ]
        },
        "networks": {"eth0": {"rx_bytes": 100, "tx_bytes": 10}, "eth1": {"rx_bytes": 5}},
    }
    stats = container_stats(raw)
    assert (stats.memory_bytes, stats.memory_limit) == (9 * MIB, 64 * MIB)
    assert (stats.block_read, stats.block_write) == (5120, 512)
    assert (stats.net_rx, stats.net_tx) == (105, 10)
    empty = container_stats({"blkio_stats": {"io_service_bytes_recursive": None}})
    assert (empty.block_read, empty.net_rx, empty.cpu_percent) == (0, 0, 0.0)


@pytest.mark.parametrize(
    "explanation",
    [
        "task 3a9c: already exists",
        "failed to start shim: mkdir /run/zun-dockerd-chaos/containerd/daemon/"
        "io.containerd.runtime.v2.task/zun-chaos/3a9c: file exists: unknown",
        "id already in use",
    ],
    ids=["task-exists", "shim-dir-exists", "runc-id-in-use"],
)
def test_docker_words_for_stale_runtime_state_are_a_type_of_their_own(explanation: str) -> None:
    """The three forms the long chaos runs met after dockerd restarts; the reconciler acts on
    the type (it recreates the container), never on Docker's words."""
    error = docker_errors.APIError("500 Server Error", explanation=explanation)
    assert isinstance(_translate_api_error(error, "start 3a9c"), StaleRuntimeStateError)
    taken = docker_errors.APIError(
        "409 Conflict", explanation='The container name "/web" is already in use by container "1"'
    )
    assert not isinstance(_translate_api_error(taken, "create web"), StaleRuntimeStateError)
