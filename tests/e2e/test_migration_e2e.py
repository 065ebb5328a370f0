"""One Application moved between engines by changing `spec.cluster` only: docker -> Swarm ->
Kubernetes -> docker, through a `zun-controller run` process against a real etcd, the main
dockerd (Zun's Containers behind a balancer, and the same engine as a single-node Swarm) and
the Kubernetes test bed (kwok: its Pods are not real), then a move to a Swarm whose endpoint
does not answer and one whose service name is taken by a hand-made service (both fail; the
old side serves on), and a delete in the middle of a move.

After each move nothing of the app is left on the engine it left, asked of that engine's own
API: Docker containers by Zun's labels (and no Container records), `docker service ls` by
the project's label, `kubectl get deployments,services -n zun-<project>`.

What the probe covers: a client that follows `status.endpoints` (re-read every 0.2 s) sends
GETs on fresh connections, every 30 ms, to whatever those endpoints are while the serving
side is the docker or the Swarm one (the balancer's 127.0.0.1 port; each Swarm task's
host-mode port on 127.0.0.1). The endpoint a user sees changes at every move (each engine
publishes its own way), so a client must follow it: the old side is removed only a few
seconds after the cut over. While the Kubernetes side serves the probe pauses (kwok runs no
containers: nothing answers there; its Deployment and Service are checked with kubectl
instead), so on the Swarm -> Kubernetes move it covers the Swarm side up to the cut over, and
on Kubernetes -> docker the docker side from the cut over. Every GET it sends must succeed.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane
from zun_bed import ZunBed, clean_engine

from zun_controller.errors import NotFoundError
from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_KIND, LABEL_PROJECT
from zun_controller.models.container import Container
from zun_controller.reconcilers.app_migration import serving
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600
#: the Clusters whose endpoints carry traffic on this machine
PROBED = {"dk", "sw"}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    """The main engine, a single-node Swarm manager (initialised if it is not one; left on)."""
    ensure_test_images(ensure_dockerd())
    main = client(MAIN_SOCKET_URL)
    if main.info()["Swarm"]["LocalNodeState"] != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    yield main
    main.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient, kube: KubeControlPlane
) -> AsyncIterator[ZunBed]:
    project = f"m{secrets.token_hex(3)}"
    bed = ZunBed(own_etcd, tmp_path, (project,))
    await bed.apply("Secret", "kube-admin", {"data": {"kubeconfig": kube.kubeconfig.read_text()}})
    await bed.apply("Host", "local", {"endpoint": MAIN_SOCKET_URL})
    await bed.apply("Cluster", "dk", {"type": "docker"})
    await bed.apply("Cluster", "sw", {"type": "swarm", "endpoint": MAIN_SOCKET_URL})
    down = f"tcp://127.0.0.1:{_closed_port()}"
    await bed.apply("Cluster", "sw-down", {"type": "swarm", "endpoint": down})
    kubernetes = {"type": "kubernetes", "kubeconfigSecret": {"name": "kube-admin"}}
    await bed.apply("Cluster", "kube", kubernetes)
    bed.start()
    try:
        yield bed
    finally:
        await bed.close()
        for service in engine.services.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
            service.remove()
        clean_engine(engine, (project,))
        _remove_network(engine, f"zun-swarm-{project}")
        kube.kubectl_run(
            "delete", "namespace", f"zun-{project}", "--ignore-not-found", "--wait=false"
        )


def _remove_network(engine: docker.DockerClient, name: str) -> None:
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


def manifest(cluster: str) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "replicas": 2,
        "template": {"containers": [{"name": "httpd", "image": HTTPD_V1}]},
        "service": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
        "updateStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            "progressDeadlineSeconds": 20,
        },
    }


# -- what each engine's own API says is left of the app


def docker_left(engine: docker.DockerClient, project: str) -> list[str]:
    """The app's replica and balancer containers (Zun's Container label; not Swarm tasks)."""
    labels = [f"{LABEL_PROJECT}={project}", f"{LABEL_KIND}=Container"]
    found = engine.containers.list(
        ignore_removed=True, all=True, sparse=True, filters={"label": labels}
    )
    return [c.id for c in found]


def swarm_left(engine: docker.DockerClient, project: str) -> list[str]:
    """`docker service ls` of the project, and task containers of the app's service."""
    services = [
        s.name for s in engine.services.list(filters={"label": f"{LABEL_PROJECT}={project}"})
    ]
    tasks = engine.containers.list(
        ignore_removed=True,
        all=True,
        sparse=True,
        filters={"label": f"com.docker.swarm.service.name=zun_{project}_web"},
    )
    return services + [c.id for c in tasks]


def kube_left(kube: KubeControlPlane, project: str) -> list[str]:
    """`kubectl get deployments,services` in the app's namespace (names)."""
    found = kube.kubectl_run(
        "-n", f"zun-{project}", "get", "deployments,services", "-o", "name", check=False
    )
    return found.stdout.split() if found.returncode == 0 else []


class FollowingProbe:
    """A client of the app that follows `status.endpoints` (module docstring)."""

    def __init__(self, zun: ZunBed, project: str, *, limit: int = 3000, seconds: float = 150):
        self.zun, self.project, self.limit, self.seconds = zun, project, limit, seconds
        self.urls: list[str] = []
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.followed: list[tuple[str, ...]] = []
        #: `Migrating` condition reasons seen while probing
        self.reasons: set[str] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def sent(self) -> int:
        return sum(self.answers.values()) + len(self.failures)

    async def _follow(self) -> None:
        while not self._stop.is_set():
            app = await self.zun.store.get(Application, "web", self.project)
            cond = app.status.condition("Migrating")
            self.reasons.add(cond.reason if cond else "")
            ports = [e.rsplit(":", 1)[1] for e in app.status.endpoints]
            urls = [f"http://127.0.0.1:{p}/" for p in ports] if serving(app) in PROBED else []
            if tuple(urls) != (self.followed[-1] if self.followed else None):
                self.followed.append(tuple(urls))
            self.urls = urls
            await asyncio.sleep(0.2)

    async def _get(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        deadline = time.monotonic() + self.seconds
        async with httpx.AsyncClient(timeout=3, limits=limits) as http:
            n = 0
            while not self._stop.is_set() and n < self.limit and time.monotonic() < deadline:
                urls = self.urls
                if urls:
                    url = urls[n % len(urls)]
                    n += 1
                    await self._one(http, url)
                await asyncio.sleep(0.03)

    async def _one(self, http: httpx.AsyncClient, url: str) -> None:
        try:
            resp = await http.get(url)
        except httpx.HTTPError as exc:
            self.failures.append(f"{url}: {exc!r}")
            return
        if resp.status_code != 200:
            self.failures.append(f"{url}: HTTP {resp.status_code}")
        else:
            self.answers[resp.text.split(" host=")[0]] += 1

    async def start(self) -> FollowingProbe:
        self._tasks = [asyncio.create_task(self._follow())]
        await asyncio.sleep(0.3)  # the first read of status
        self._tasks.append(asyncio.create_task(self._get()))
        return self

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def _move(zun: ZunBed, project: str, cluster: str) -> None:
    obj = await zun.store.get(Application, "web", project)
    obj.spec.cluster = cluster
    await zun.store.update(obj)


async def _settled_on(zun: ZunBed, project: str, cluster: str, within: float = 120) -> Application:
    """The app Ready on `cluster` with no move left (the old side confirmed gone)."""

    async def check() -> Application | None:
        app = await zun.store.get(Application, "web", project)
        cond = app.status.condition("Migrating")
        done = (
            cond is not None
            and cond.reason == "Settled"
            and serving(app) == cluster
            and app.status.migration is None
            and app.status.phase == "Ready"
            and app.status.ready_replicas == 2
        )
        return app if done else None

    app: Application = await zun.until(check, within, f"settled on {cluster}")
    return app


async def _step(zun: ZunBed, project: str, to: str) -> FollowingProbe:
    probe = await FollowingProbe(zun, project).start()
    await _move(zun, project, to)
    await _settled_on(zun, project, to)
    await asyncio.sleep(1)
    await probe.stop()
    return probe


def _served_without_loss(probe: FollowingProbe, least: int) -> None:
    print(
        f"probe: {probe.sent} GETs, {len(probe.failures)} failed, endpoints followed "
        f"{probe.followed}, Migrating reasons {sorted(probe.reasons)}"
    )
    assert probe.failures == [], (probe.sent, probe.failures[:5])
    assert set(probe.answers) == {"zun-test httpd v1"}, probe.answers
    assert probe.sent >= least, (probe.sent, probe.followed)


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_docker_swarm_kubernetes_docker(
    zun: ZunBed, engine: docker.DockerClient, kube: KubeControlPlane
) -> None:
    project = zun.projects[0]
    await zun.apply("Application", "web", manifest("dk"), project=project)
    await _settled_on(zun, project, "dk")
    assert len(docker_left(engine, project)) == 3  # two replicas and the balancer

    probe = await _step(zun, project, "sw")  # docker -> Swarm
    _served_without_loss(probe, 50)
    assert len(probe.followed) >= 2 and probe.followed[0] != probe.followed[-1], probe.followed
    assert probe.reasons & {"Migrating", "RemovingOldSide"}, probe.reasons
    assert docker_left(engine, project) == []
    assert not (await zun.store.list(Container, project)).items
    assert f"zun_{project}_web" in swarm_left(engine, project)

    probe = await _step(zun, project, "kube")  # Swarm -> Kubernetes: Swarm serves until then
    _served_without_loss(probe, 10)
    assert probe.followed[-1] == (), probe.followed  # paused once Kubernetes served
    assert swarm_left(engine, project) == []
    assert sorted(kube_left(kube, project)) == ["deployment.apps/web", "service/web"]

    probe = await _step(zun, project, "dk")  # Kubernetes -> docker: docker serves from then
    _served_without_loss(probe, 10)
    assert kube_left(kube, project) == []
    assert len(docker_left(engine, project)) == 3

    # a move that cannot succeed: the Swarm endpoint does not answer; docker serves on
    probe = await FollowingProbe(zun, project).start()
    await _move(zun, project, "sw-down")

    async def failed() -> Application | None:
        app = await zun.store.get(Application, "web", project)
        cond = app.status.condition("Migrating")
        return app if cond is not None and cond.reason == "MigrationFailed" else None

    app: Application = await zun.until(failed, 60, "Migrating=False MigrationFailed")
    await asyncio.sleep(1)
    await probe.stop()
    _served_without_loss(probe, 50)
    cond = app.status.condition("Migrating")
    assert cond is not None and cond.status.value == "False"
    assert "from Cluster dk to sw-down failed (ClusterNotReady" in cond.message, cond.message
    assert "dk keeps serving" in cond.message
    assert serving(app) == "dk" and app.status.phase == "Ready"
    assert len(docker_left(engine, project)) == 3
    await _move(zun, project, "dk")  # given up: settled where it serves
    await _settled_on(zun, project, "dk", within=30)

    # a move the new engine refuses: the Swarm service's name is taken by a hand-made one
    taken = engine.services.create(
        HTTPD_V1,
        name=f"zun_{project}_web",
        labels={LABEL_PROJECT: project},
        mode=docker.types.ServiceMode("replicated", 0),
    )
    probe = await FollowingProbe(zun, project).start()
    await _move(zun, project, "sw")
    app = await zun.until(failed, 60, "Migrating=False MigrationFailed")
    await asyncio.sleep(1)
    await probe.stop()
    _served_without_loss(probe, 10)
    cond = app.status.condition("Migrating")
    assert cond is not None and "failed (NameConflict: Swarm service" in cond.message, cond
    assert serving(app) == "dk" and len(docker_left(engine, project)) == 3
    assert engine.services.get(taken.id).attrs["Spec"]["Labels"] == {LABEL_PROJECT: project}
    await _move(zun, project, "dk")
    await _settled_on(zun, project, "dk", within=30)


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_a_delete_in_the_middle_of_a_move_leaves_nothing_anywhere(
    zun: ZunBed, engine: docker.DockerClient, kube: KubeControlPlane
) -> None:
    project = zun.projects[0]
    await zun.apply("Application", "web", manifest("dk"), project=project)
    await _settled_on(zun, project, "dk")
    await _move(zun, project, "sw")

    async def both_sides() -> Application | None:
        app = await zun.store.get(Application, "web", project)
        on_both = swarm_left(engine, project) and docker_left(engine, project)
        return app if app.status.migration is not None and on_both else None

    await zun.until(both_sides, 60, "a Swarm service beside the docker side")
    await zun.store.delete(Application, "web", project)

    async def gone() -> bool:
        try:
            await zun.store.get(Application, "web", project)
        except NotFoundError:
            return True
        return False

    await zun.until(gone, 90, "the Application removed")
    assert docker_left(engine, project) == []
    assert not (await zun.store.list(Container, project)).items
    assert swarm_left(engine, project) == []
    assert kube_left(kube, project) == []
