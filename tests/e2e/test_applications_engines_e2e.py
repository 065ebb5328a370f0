"""One Application manifest, only `spec.cluster` changed, converges on every engine Zun drives
(issue 6): through a `zun-controller run` process, checked on the engine itself, then deleted
without leftovers. Engines: kubernetes (the kwok control plane), docker (Zun's own Containers on
the main dockerd behind a load balancer) and swarm (the main dockerd as a single-node Swarm)."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane
from zun_bed import ZunBed, clean_engine

from zun_controller.errors import NotFoundError
from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_PROJECT
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e

#: A test may wait for the Kubernetes binaries to be built (cold cache, as in CI).
SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600


def manifest(cluster: str) -> dict[str, Any]:
    """The Application every engine gets; only `cluster` differs."""
    return {
        "cluster": cluster,
        "replicas": 2,
        "template": {"containers": [{"name": "httpd", "image": HTTPD_V1}]},
        "service": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
        "updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    }


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


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


class Engine:
    """How a test reaches one engine: its Cluster record, and what runs there."""

    def __init__(
        self,
        name: str,
        cluster: dict[str, Any],
        secret: dict[str, Any] | None,
        running: Callable[[str], int],
        cleanup: Callable[[str], None],
    ) -> None:
        self.name, self.cluster, self.secret = name, cluster, secret
        self.running, self.cleanup = running, cleanup


def kube_engine(plane: KubeControlPlane) -> Engine:
    def ready_pods(project: str) -> int:
        found = plane.kubectl_run(
            "-n", f"zun-{project}", "get", "deploy", "web", "-o", "json", check=False
        )
        if found.returncode != 0:
            return 0
        return int(json.loads(found.stdout)["status"].get("readyReplicas", 0))

    def cleanup(project: str) -> None:
        for namespace in (project, f"zun-{project}"):
            plane.kubectl_run(
                "delete", "namespace", namespace, "--ignore-not-found", "--wait=false"
            )

    return Engine(
        "kube",
        {"type": "kubernetes", "kubeconfigSecret": {"name": "kube-admin"}},
        {"kubeconfig": plane.kubeconfig.read_text()},
        ready_pods,
        cleanup,
    )


def swarm_engine(engine: docker.DockerClient) -> Engine:
    def running_tasks(project: str) -> int:
        try:
            tasks = engine.api.tasks(
                filters={"service": f"zun_{project}_web", "desired-state": "running"}
            )
        except docker.errors.NotFound:
            return 0
        return sum(1 for t in tasks if t["Status"]["State"] == "running")

    def cleanup(project: str) -> None:
        for service in engine.services.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
            service.remove()

    cluster = {"type": "swarm", "endpoint": MAIN_SOCKET_URL}
    return Engine("swarm", cluster, None, running_tasks, cleanup)


def docker_engine(engine: docker.DockerClient) -> Engine:
    """A `docker` Cluster: Zun's own Containers on the Host `local` (the main engine)."""

    def running_replicas(project: str) -> int:
        """Running engine containers of the app's replica records (not its balancer)."""
        found = engine.containers.list(
            ignore_removed=True, filters={"label": f"{LABEL_PROJECT}={project}"}
        )
        names = [c.labels.get("zun.openstack.org/name", "") for c in found]
        return sum(1 for n in names if n.startswith("web-") and n != "web-lb")

    def cleanup(project: str) -> None:
        clean_engine(engine, (project,))

    return Engine("dock", {"type": "docker"}, None, running_replicas, cleanup)


@pytest.fixture(params=["kubernetes", "swarm", "docker"])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "kubernetes":
        return kube_engine(request.getfixturevalue("kube"))
    if request.param == "docker":
        ensure_test_images(ensure_dockerd())
        return docker_engine(client(MAIN_SOCKET_URL))
    return swarm_engine(request.getfixturevalue("swarm"))


@pytest.fixture
async def zun(own_etcd: EtcdServer, tmp_path: Path, engine: Engine) -> AsyncIterator[ZunBed]:
    project = f"e{secrets.token_hex(3)}"
    bed = ZunBed(own_etcd, tmp_path, (project,))
    if engine.secret is not None:
        await bed.apply("Secret", "kube-admin", {"data": engine.secret})
    await bed.apply("Cluster", engine.name, engine.cluster)
    await bed.host("local", MAIN_SOCKET_URL)
    bed.start()
    try:
        yield bed
    finally:
        await bed.close()
        engine.cleanup(project)


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_same_manifest_converges_on_every_engine(zun: ZunBed, engine: Engine) -> None:
    project = zun.projects[0]
    await zun.apply("Application", "web", manifest(engine.name), project=project)

    async def converged() -> Application | None:
        app = await zun.store.get(Application, "web", project)
        s = app.status
        done = s.phase == "Ready" and s.ready_replicas == s.updated_replicas == 2
        return app if done and engine.running(project) == 2 else None

    app: Application = await zun.until(converged, 150, "2 replicas Ready")
    assert app.status.is_true("Available") and app.status.endpoints

    await zun.store.delete(Application, "web", project)

    async def gone() -> bool:
        try:
            await zun.store.get(Application, "web", project)
        except NotFoundError:
            return engine.running(project) == 0
        return False

    await zun.until(gone, 90, "Application and what it ran gone")
