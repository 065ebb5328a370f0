"""Issue 23, finding 1, on a real Docker engine (and Swarm), driven by a `zun-controller run`
process: project `<t>` and project `<t>-prod` are two tenants whose records `prod-<x>` and `<x>`
had one engine name (`zun-<t>-prod-<x>`). A member of `<t>` cannot mount (or, by deleting its
Volume, remove) the other's volume, join its network, kill or replace its container, or take
over its Swarm service."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from testbed.docker import (
    HTTPD_V1,
    HTTPD_V2,
    MAIN_SOCKET_URL,
    client,
    ensure_dockerd,
    ensure_test_images,
)
from zun_bed import ZunBed, clean_engine

from zun_controller.errors import NotFoundError
from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_PROJECT, LABEL_UID
from zun_controller.models.container import Container
from zun_controller.models.network import Volume
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def tenants() -> tuple[str, str]:
    """(attacker, victim): `h<tag>` and `h<tag>-prod`."""
    tag = f"h{secrets.token_hex(3)}"
    return tag, f"{tag}-prod"


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient, tenants: tuple[str, str]
) -> AsyncIterator[ZunBed]:
    bed = ZunBed(own_etcd, tmp_path, tenants)
    await bed.host("local", MAIN_SOCKET_URL)
    bed.start()
    yield bed
    await bed.close()
    _clean(engine, tenants)


def _clean(engine: docker.DockerClient, tenants: tuple[str, str]) -> None:
    """Remove the tenants' services (if a Swarm test made any), then what the engine holds
    of theirs; a Swarm network is in use until the services' tasks are gone."""
    if engine.info()["Swarm"]["LocalNodeState"] == "active":
        for project in tenants:
            for service in engine.services.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
                service.remove()
    deadline = time.monotonic() + 30
    while True:
        try:
            return clean_engine(engine, tenants)
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def the_container(engine: docker.DockerClient, obj: Container) -> Any:
    (found,) = engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL_UID}={obj.metadata.uid}"}
    )
    return found


async def gone(zun: ZunBed, kind: Any, name: str, project: str) -> bool:
    try:
        await zun.store.get(kind, name, project)
    except NotFoundError:
        return True
    return False


@pytest.mark.timeout(240)
async def test_a_volume_of_another_project_is_never_mounted_nor_removed(
    zun: ZunBed, engine: docker.DockerClient, tenants: tuple[str, str]
) -> None:
    attacker, victim = tenants
    mount = [{"volume": "data", "mountPath": "/data"}]
    await zun.apply("Volume", "data", {}, project=victim)
    await zun.apply("Container", "db", {"image": HTTPD_V1, "volumes": mount}, project=victim)
    db = the_container(engine, await zun.phase("db", victim, "Running"))
    assert db.exec_run(["sh", "-c", "echo secret > /data/file"]).exit_code == 0
    (victim_volume,) = [m["Name"] for m in db.attrs["Mounts"] if m["Type"] == "volume"]

    steal = [{"volume": "prod-data", "mountPath": "/data"}]
    await zun.apply("Volume", "prod-data", {}, project=attacker)
    await zun.apply("Container", "thief", {"image": HTTPD_V1, "volumes": steal}, project=attacker)
    thief = the_container(engine, await zun.phase("thief", attacker, "Running"))
    mounted = [m["Name"] for m in thief.attrs["Mounts"] if m["Type"] == "volume"]
    assert mounted != [victim_volume], "the attacker's container mounts the victim's volume"
    assert thief.exec_run(["cat", "/data/file"]).exit_code != 0, "the attacker read the data"

    await zun.store.delete(Container, "thief", attacker)
    await zun.store.delete(Volume, "prod-data", attacker)
    await zun.until(lambda: gone(zun, Volume, "prod-data", attacker), 60, "attacker's volume gone")
    assert engine.volumes.get(victim_volume).attrs["Labels"][LABEL_PROJECT] == victim
    assert db.exec_run(["cat", "/data/file"]).output.strip() == b"secret"


@pytest.mark.timeout(240)
async def test_a_network_of_another_project_is_never_joined(
    zun: ZunBed, engine: docker.DockerClient, tenants: tuple[str, str]
) -> None:
    attacker, victim = tenants
    await zun.apply("Container", "web", {"image": HTTPD_V1}, project=victim)
    web = await zun.phase("web", victim, "Running")
    ((victim_network, victim_ip),) = web.status.ips.items()

    # `<t>`'s Network `prod` had the engine name of `<t>-prod`'s default network
    await zun.apply("Network", "prod", {}, project=attacker)
    await zun.apply("Container", "spy", {"image": HTTPD_V1, "networks": ["prod"]}, project=attacker)
    spy = await zun.phase("spy", attacker, "Running")
    assert victim_network not in spy.status.ips, "the attacker's container joined the network"
    probe = ["timeout", "3", "wget", "-q", "-O-", f"http://{victim_ip}:8080/"]
    assert the_container(engine, spy).exec_run(probe).exit_code != 0, "the attacker reached web"
    network = engine.networks.get(victim_network)
    assert network.attrs["Labels"][LABEL_PROJECT] == victim
    assert set(network.attrs["Containers"]) == {web.status.container_id}


@pytest.mark.timeout(240)
async def test_a_container_of_another_project_is_never_killed_nor_replaced(
    zun: ZunBed, engine: docker.DockerClient, tenants: tuple[str, str]
) -> None:
    attacker, victim = tenants
    await zun.apply("Container", "web", {"image": HTTPD_V1}, project=victim)
    web = await zun.phase("web", victim, "Running")
    await zun.apply("Container", "prod-web", {"image": HTTPD_V2}, project=attacker)
    await zun.phase("prod-web", attacker, "Running")

    async def settled() -> bool:  # a few passes of both records, after the attacker's create
        mine = await zun.container("prod-web", attacker)
        return mine.status.observed_generation == mine.metadata.generation

    await zun.until(settled, 30, "the attacker's container settled")
    again = await zun.container("web", victim)
    found = engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL_UID}={web.metadata.uid}"}
    )
    assert [c.id for c in found] == [web.status.container_id], "the victim's container was killed"
    real = found[0]
    assert again.status.container_id == web.status.container_id, "the victim was recreated"
    assert real.id == web.status.container_id and real.status == "running"
    assert real.attrs["RestartCount"] == 0 and again.status.restart_count == 0
    assert real.attrs["Config"]["Image"] == HTTPD_V1


@pytest.fixture(scope="module")
def swarm(engine: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """The main engine as a single-node Swarm manager (initialised if it is not one; left on,
    as the Swarm e2e leaves it)."""
    if engine.info()["Swarm"]["LocalNodeState"] != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    yield engine


def _app(image: str) -> dict[str, Any]:
    return {
        "cluster": "sw",
        "replicas": 1,
        "template": {"containers": [{"name": "httpd", "image": image}]},
    }


def _services(swarm: docker.DockerClient, project: str) -> list[Any]:
    found: list[Any] = swarm.services.list(filters={"label": f"{LABEL_PROJECT}={project}"})
    return found


@pytest.mark.timeout(300)
async def test_a_swarm_service_of_another_project_is_never_taken_over(
    swarm: docker.DockerClient, zun: ZunBed, tenants: tuple[str, str]
) -> None:
    attacker, victim = tenants
    await zun.apply("Cluster", "sw", {"type": "swarm", "endpoint": MAIN_SOCKET_URL})
    await zun.apply("Application", "web", _app(HTTPD_V1), project=victim)

    async def ready(name: str, project: str) -> bool:
        obj = await zun.store.get(Application, name, project)
        return obj.status.phase == "Ready"

    await zun.until(lambda: ready("web", victim), 150, "the victim's app ready")
    (service,) = _services(swarm, victim)
    version = service.attrs["Version"]["Index"]
    # `<t>`'s app `prod-web` had the service name of `<t>-prod`'s app `web`
    await zun.apply("Application", "prod-web", _app(HTTPD_V2), project=attacker)
    await zun.until(lambda: ready("prod-web", attacker), 150, "the attacker's app ready")

    victims = _services(swarm, victim)
    assert [s.id for s in victims] == [service.id], "the victim's service was taken over"
    after = victims[0]
    assert after.attrs["Version"]["Index"] == version, "the victim's service was patched"
    image = after.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.split("@")[0] == HTTPD_V1
    (theirs,) = _services(swarm, attacker)
    assert theirs.id != service.id
