"""Applications on a real single-node Docker Swarm, driven by a `zun-controller run` process:
replicas, scale (and a scale or removal by hand put back), upgrade, automatic rollback of a failing
upgrade, status from the tasks, traffic through host-mode published ports, and deletion that
removes the service and nothing else."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from testbed.docker import (
    HTTPD_BROKEN,
    HTTPD_V1,
    HTTPD_V2,
    MAIN_SOCKET_URL,
    TESTBED_LABELS,
    client,
    ensure_dockerd,
    ensure_test_images,
)
from zun_bed import ZunBed

from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_PROJECT
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def swarm() -> Iterator[docker.DockerClient]:
    """The main engine as a single-node Swarm manager (initialised if it is not one; left on)."""
    ensure_test_images(ensure_dockerd())
    engine = client(MAIN_SOCKET_URL)
    if engine.info()["Swarm"]["LocalNodeState"] != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    yield engine
    engine.close()


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, swarm: docker.DockerClient
) -> AsyncIterator[ZunBed]:
    project = f"s{secrets.token_hex(3)}"
    bed = ZunBed(own_etcd, tmp_path, (project,))
    await bed.apply("Cluster", "sw", {"type": "swarm", "endpoint": MAIN_SOCKET_URL})
    bed.start()
    try:
        yield bed
    finally:
        try:
            await bed.close()
        finally:
            for service in swarm.services.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
                service.remove()
            _remove_network(swarm, f"zun-swarm-{project}")


def _remove_network(engine: docker.DockerClient, name: str) -> None:
    """The project network Zun leaves for the project's other apps (in use until tasks end)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            for network in engine.networks.list(names=[name]):
                network.remove()
            return
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _spec(image: str, replicas: int) -> dict[str, Any]:
    return {
        "cluster": "sw",
        "replicas": replicas,
        "template": {"containers": [{"name": "httpd", "image": image}]},
        "service": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
        "updateStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            "progressDeadlineSeconds": 90,
        },
    }


async def _edit(zun: ZunBed, project: str, **spec: Any) -> None:
    obj = await zun.store.get(Application, "web", project)
    obj.spec = type(obj.spec).model_validate({**obj.spec.model_dump(by_alias=True), **spec})
    await zun.store.update(obj)


def _running_tasks(engine: docker.DockerClient, project: str) -> list[dict[str, Any]]:
    try:
        tasks = engine.api.tasks(
            filters={"service": f"zun_{project}_web", "desired-state": "running"}
        )
    except docker.errors.NotFound:
        return []
    return [t for t in tasks if t["Status"]["State"] == "running"]


def _images(tasks: list[dict[str, Any]]) -> set[str]:
    return {t["Spec"]["ContainerSpec"]["Image"].split("@")[0] for t in tasks}


async def _settled(
    zun: ZunBed, engine: docker.DockerClient, project: str, replicas: int, image: str
) -> Application:
    async def check() -> Application | None:
        obj = await zun.store.get(Application, "web", project)
        tasks = _running_tasks(engine, project)
        ok = (
            obj.status.phase == "Ready"
            and obj.status.ready_replicas == replicas
            and len(tasks) == replicas
            and _images(tasks) == {image}
            and len(obj.status.endpoints) == replicas
        )
        return obj if ok else None

    obj: Application = await zun.until(check, 150, f"{replicas} x {image} ready")
    return obj


def _answers(endpoints: list[str]) -> set[str]:
    out = set()
    for endpoint in endpoints:
        port = endpoint.rsplit(":", 1)[1]
        body = httpx.get(f"http://127.0.0.1:{port}/", timeout=3).text
        out.add(body.split(" host=")[0])
    return out


@pytest.mark.timeout(600)
async def test_swarm_application_lifecycle(zun: ZunBed, swarm: docker.DockerClient) -> None:
    project = zun.projects[0]
    bystander = swarm.services.create(
        HTTPD_V1,
        name=f"zun-{project}-bystander",
        labels={**TESTBED_LABELS, LABEL_PROJECT: project},
        mode=docker.types.ServiceMode("replicated", 0),
    )
    await zun.apply("Application", "web", _spec(HTTPD_V1, 2), project=project)
    obj = await _settled(zun, swarm, project, 2, HTTPD_V1)
    service = swarm.api.inspect_service(f"zun_{project}_web")
    assert service["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert service["Spec"]["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    assert _answers(obj.status.endpoints) == {"zun-test httpd v1"}
    cluster = await zun.store.get(type(obj), "web", project)
    assert cluster.status.is_true("Available")

    await _edit(zun, project, replicas=4)
    await _settled(zun, swarm, project, 4, HTTPD_V1)

    # scaled by hand behind Zun's back: put back (it polls the service)
    raw = swarm.api.inspect_service(f"zun_{project}_web")
    raw["Spec"]["Mode"]["Replicated"]["Replicas"] = 1
    swarm.api._post_json(
        swarm.api._url("/services/{0}/update", raw["ID"]),
        data=raw["Spec"],
        params={"version": raw["Version"]["Index"]},
    )
    await zun.until(
        lambda: (
            swarm.api.inspect_service(f"zun_{project}_web")["Spec"]["Mode"]["Replicated"][
                "Replicas"
            ]
            == 4
        ),
        60,
        "replicas put back to 4",
    )
    # removed by hand: made again (same poll)
    swarm.api.remove_service(f"zun_{project}_web")
    await zun.until(
        lambda: f"zun_{project}_web" in {s.name for s in swarm.services.list()},
        60,
        "service made again",
    )
    await _settled(zun, swarm, project, 4, HTTPD_V1)

    await _edit(zun, project, template={"containers": [{"name": "httpd", "image": HTTPD_V2}]})
    obj = await _settled(zun, swarm, project, 4, HTTPD_V2)
    good = obj.status.current_revision
    assert obj.status.previous_revision is not None and good != obj.status.previous_revision
    assert _answers(obj.status.endpoints) == {"zun-test httpd v2"}

    await _edit(zun, project, template={"containers": [{"name": "httpd", "image": HTTPD_BROKEN}]})

    async def rolled_back() -> Application | None:
        o = await zun.store.get(Application, "web", project)
        return o if o.status.is_true("RolledBack") else None

    obj = await zun.until(rolled_back, 150, "RolledBack")
    cond = obj.status.condition("RolledBack")
    assert cond is not None and cond.reason == "Unhealthy"
    assert obj.status.failed_revision is not None and obj.status.current_revision == good
    obj = await _settled(zun, swarm, project, 4, HTTPD_V2)
    assert _answers(obj.status.endpoints) == {"zun-test httpd v2"}

    await zun.store.delete(Application, "web", project)

    def gone() -> bool:
        names = {s.name for s in swarm.services.list()}
        left = swarm.containers.list(
            ignore_removed=True,
            all=True,
            sparse=True,
            filters={"label": f"com.docker.swarm.service.name=zun-{project}-web"},
        )
        return f"zun_{project}_web" not in names and not left

    await zun.until(gone, 90, "service and its containers removed")
    assert bystander.id in {s.id for s in swarm.services.list()}
