"""The reference implementation end to end: Container records become real containers on real
Docker engines, driven by a `zun-controller run` process, checked from the outside."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from testbed.docker import (
    HTTPD_V1,
    HTTPD_V2,
    MAIN_SOCKET_URL,
    client,
    ensure_dockerd,
    ensure_test_images,
    extra_engine_with_images,
    stop_extra_dockerd,
)
from zun_bed import ZunBed, clean_engine

from zun_controller.errors import NotFoundError
from zun_controller.models.base import LABEL_UID
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.network import Network
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def projects() -> tuple[str, str]:
    tag = secrets.token_hex(3)
    return (f"a{tag}", f"b{tag}")


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient, projects: tuple[str, str]
) -> AsyncIterator[ZunBed]:
    bed = ZunBed(own_etcd, tmp_path, projects)
    await bed.host("local", MAIN_SOCKET_URL)
    bed.start()
    yield bed
    await bed.close()
    clean_engine(engine, projects)


def ours(engine: docker.DockerClient, obj: Container) -> list[Any]:
    found: list[Any] = engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL_UID}={obj.metadata.uid}"}
    )
    return found


def http_get(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=3)


@pytest.mark.timeout(180)
async def test_container_serves_http_follows_state_and_goes_on_delete(
    zun: ZunBed, engine: docker.DockerClient, projects: tuple[str, str]
) -> None:
    p = projects[0]
    await zun.apply(
        "Container", "web", {"image": HTTPD_V1, "ports": [{"containerPort": 8080}]}, project=p
    )
    obj = await zun.phase("web", p, "Running")
    port = obj.status.ports[0].host_port
    assert obj.status.ports[0].host_ip == "127.0.0.1"
    body = (await zun.until(lambda: _try_get(port), 20, "HTTP answer")).text
    assert "v1" in body
    (real,) = ours(engine, obj)
    for state, docker_status in [
        ("Paused", "paused"),
        ("Stopped", "exited"),
        ("Running", "running"),
    ]:
        await zun.edit("web", p, state=state)
        await zun.phase("web", p, state)
        real.reload()
        assert real.status == docker_status
    # an engine-picked host port changes when the container restarts: status says the new one
    port = (await zun.container("web", p)).status.ports[0].host_port
    assert "v1" in (await zun.until(lambda: _try_get(port), 20, "HTTP after restart")).text
    await zun.store.delete(Container, "web", p)
    await zun.until(lambda: not ours(engine, obj), 30, "container removed")


def _try_get(port: int) -> httpx.Response | None:
    try:
        response = http_get(port)
    except httpx.HTTPError:
        return None
    return response if response.status_code == 200 else None


@pytest.mark.timeout(180)
async def test_drift_behind_zuns_back_is_undone(
    zun: ZunBed, engine: docker.DockerClient, projects: tuple[str, str]
) -> None:
    p = projects[0]
    await zun.apply("Container", "web", {"image": HTTPD_V1}, project=p)
    obj = await zun.phase("web", p, "Running")
    timings = {}
    (real,) = ours(engine, obj)
    start = time.monotonic()
    real.stop(timeout=1)
    await zun.until(lambda: _running(engine, obj), 30, "restarted after docker stop")
    timings["docker stop"] = time.monotonic() - start
    (real,) = ours(engine, obj)
    start = time.monotonic()
    real.remove(force=True)
    await zun.until(lambda: _running(engine, obj), 30, "recreated after docker rm -f")
    timings["docker rm -f"] = time.monotonic() - start
    print(f"\ndrift undone in: {', '.join(f'{k} {v:.2f}s' for k, v in timings.items())}")
    assert all(v < 30 for v in timings.values())


def _running(engine: docker.DockerClient, obj: Container) -> bool:
    found = ours(engine, obj)
    return len(found) == 1 and found[0].status == "running"


@pytest.mark.timeout(180)
async def test_missing_image_gives_an_error_without_a_loop(
    zun: ZunBed, projects: tuple[str, str]
) -> None:
    p = projects[0]
    # Never: nothing is pulled (a pull would ask Docker Hub; tests/e2e/test_registry_e2e.py
    # pulls from a loopback registry)
    ghost = {"image": "zun-test/does-not-exist:1", "imagePullPolicy": "Never"}
    await zun.apply("Container", "ghost", ghost, project=p)
    obj = await zun.phase("ghost", p, "Error")
    cond = obj.status.condition("Ready")
    assert cond is not None and cond.reason == "ErrImageNeverPull"
    rev = obj.metadata.resource_version
    await asyncio.sleep(3)
    again = await zun.container("ghost", p)
    assert again.metadata.resource_version == rev, "status rewritten in a loop"
    assert zun.proc is not None and zun.proc.poll() is None


@pytest.mark.timeout(240)
async def test_volume_survives_recreation_and_projects_are_isolated(
    zun: ZunBed, engine: docker.DockerClient, projects: tuple[str, str]
) -> None:
    a, b = projects
    await zun.apply("Volume", "data", {}, project=a)
    mounts = [{"volume": "data", "mountPath": "/data"}]
    await zun.apply("Container", "db", {"image": HTTPD_V1, "volumes": mounts}, project=a)
    await zun.apply("Container", "other", {"image": HTTPD_V1}, project=b)
    db = await zun.phase("db", a, "Running")
    other = await zun.phase("other", b, "Running")
    (real,) = ours(engine, db)
    assert real.exec_run(["sh", "-c", "echo kept > /data/file"]).exit_code == 0
    await zun.edit("db", a, image=HTTPD_V2)
    await zun.until(lambda: _image_is(engine, db, HTTPD_V2), 60, "recreated on v2")
    (real,) = ours(engine, db)
    assert real.exec_run(["cat", "/data/file"]).output.strip() == b"kept"
    other_ip = next(iter((await zun.container("other", b)).status.ips.values()))
    probe = ["timeout", "3", "wget", "-q", "-O-", f"http://{other_ip}:8080/"]
    assert real.exec_run(probe).exit_code != 0, "project a reached project b"
    (peer,) = ours(engine, other)
    own_ip = next(iter(peer.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert (
        peer.exec_run(["timeout", "3", "wget", "-q", "-O-", f"http://{own_ip}:8080/"]).exit_code
        == 0
    )


@pytest.mark.timeout(180)
async def test_a_network_record_joins_its_containers_and_keeps_the_rest_out(
    zun: ZunBed, engine: docker.DockerClient, projects: tuple[str, str]
) -> None:
    p = projects[0]
    await zun.apply("Network", "backend", {}, project=p)
    for name in ("api", "db"):
        await zun.apply("Container", name, {"image": HTTPD_V1, "networks": ["backend"]}, project=p)
    await zun.apply("Container", "outsider", {"image": HTTPD_V1}, project=p)
    api, db, outsider = [await zun.phase(n, p, "Running") for n in ("api", "db", "outsider")]
    engine_name = f"zun_{p}_backend"
    (real_api,) = ours(engine, api)
    assert list(real_api.attrs["NetworkSettings"]["Networks"]) == [engine_name]
    db_ip = db.status.ips[engine_name]

    def get_from(container: Any, ip: str) -> int:
        probe = ["timeout", "3", "wget", "-q", "-O-", f"http://{ip}:8080/"]
        return int(container.exec_run(probe).exit_code)

    assert get_from(real_api, db_ip) == 0, "api could not reach db on their network"
    (real_outsider,) = ours(engine, outsider)
    assert get_from(real_outsider, db_ip) != 0, "a container off the network reached db"

    network = await zun.store.get(Network, "backend", p)
    assert network.status.phase == "Ready" and "local" in network.status.hosts
    await zun.store.delete(Network, "backend", p)

    async def in_use() -> bool:
        net = await zun.store.get(Network, "backend", p)
        cond = net.status.condition("Ready")
        return cond is not None and cond.reason == "InUse"

    await zun.until(in_use, 30, "network deletion held while in use")
    assert engine.networks.list(names=[engine_name]), "network removed while in use"
    for name in ("api", "db"):
        await zun.store.delete(Container, name, p)

    async def network_gone() -> bool:
        try:
            await zun.store.get(Network, "backend", p)
        except NotFoundError:
            return not engine.networks.list(names=[engine_name])
        return False

    await zun.until(network_gone, 60, "network record and engine network removed")


def _image_is(engine: docker.DockerClient, obj: Container, image: str) -> bool:
    found = ours(engine, obj)
    return (
        len(found) == 1
        and found[0].attrs["Config"]["Image"] == image
        and found[0].status == "running"
    )


@pytest.mark.timeout(240)
async def test_sigkill_during_creates_leaves_no_duplicate(
    zun: ZunBed, engine: docker.DockerClient, projects: tuple[str, str]
) -> None:
    p = projects[0]
    names = [f"c{i:02d}" for i in range(12)]
    for name in names:
        await zun.apply("Container", name, {"image": HTTPD_V1}, project=p)

    async def some_created() -> bool:
        found = engine.containers.list(
            ignore_removed=True, all=True, filters={"label": f"zun.openstack.org/project={p}"}
        )
        return len(found) >= 3

    await zun.until(some_created, 60, "first creates")
    zun.kill()
    zun.start()
    for name in names:
        await zun.phase(name, p, "Running", within=120)
    for name in names:
        assert len(ours(engine, await zun.container(name, p))) == 1, name


@pytest.fixture
def second_engine() -> Iterator[str]:
    with extra_engine_with_images("zunb") as url:
        yield url


@pytest.mark.timeout(300)
async def test_two_hosts_spread_full_host_and_unreachable_host(
    zun: ZunBed, second_engine: str, projects: tuple[str, str]
) -> None:
    p = projects[0]
    await zun.host("second", second_engine)
    await zun.host("tiny", MAIN_SOCKET_URL, capacity={"memory": "1Mi"})

    async def hosts_ready() -> bool:
        hosts = (await zun.store.list(Host)).items
        return len(hosts) == 3 and all(h.status.is_true("Ready") for h in hosts)

    await zun.until(hosts_ready, 60, "three hosts Ready")
    for i in range(6):
        await zun.apply(
            "Container", f"s{i}", {"image": HTTPD_V1, "resources": {"memory": "32Mi"}}, project=p
        )
    placed = [
        (await zun.phase(f"s{i}", p, "Running", within=90)).status.host or "" for i in range(6)
    ]
    assert sorted(placed) == ["local"] * 3 + ["second"] * 3

    async def second_accounted() -> Host | None:
        host = await zun.store.get(Host, "second")
        counted = host.status.containers == 3 and host.status.allocated.memory == 3 * 32 * 2**20
        return host if counted else None

    second = await zun.until(second_accounted, 30, "host second counts its 3 containers")
    assert second.status.reachable
    assert second.status.version == client(second_engine).version()["Version"]
    assert second.status.capacity.cpu >= 1 and second.status.capacity.memory > 2**30
    tiny = await zun.store.get(Host, "tiny")
    assert tiny.status.capacity.memory == 2**20 and tiny.status.containers == 0
    stop_extra_dockerd("zunb")

    async def second_not_ready() -> bool:
        host = await zun.store.get(Host, "second")
        return not host.status.is_true("Ready")

    await zun.until(second_not_ready, 60, "host second NotReady")
    on_second = [f"s{i}" for i, h in enumerate(placed) if h == "second"]

    async def conditions_say_so() -> bool:
        for name in on_second:
            cond = (await zun.container(name, p)).status.condition("Ready")
            if cond is None or cond.reason != "RuntimeUnavailable":
                return False
        return True

    await zun.until(conditions_say_so, 60, "containers on second say RuntimeUnavailable")
