"""Applications on a kubernetes Cluster end to end: records written to etcd, a real
`zun-controller run` process, the real control plane (kwok nodes), checked with kubectl."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane
from zun_bed import ZunBed

from zun_controller.errors import NotFoundError
from zun_controller.models.application import Application, Cluster
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e

SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600
REVISION_LABEL = "zun.openstack.org/revision"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def project(kube: KubeControlPlane) -> Iterator[str]:
    name = f"k{secrets.token_hex(3)}"
    yield name
    for namespace in (name, f"zun-{name}"):
        kube.kubectl_run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, kube: KubeControlPlane, project: str
) -> AsyncIterator[ZunBed]:
    bed = ZunBed(own_etcd, tmp_path, (project,))
    await bed.apply("Secret", "kube-admin", {"data": {"kubeconfig": kube.kubeconfig.read_text()}})
    await bed.apply(
        "Cluster", "kube", {"type": "kubernetes", "kubeconfigSecret": {"name": "kube-admin"}}
    )
    bed.start()
    yield bed
    await bed.close()


def app_spec(replicas: int = 3, deadline: int = 30, cpu: Any = "250m") -> dict[str, Any]:
    return {
        "cluster": "kube",
        "replicas": replicas,
        "template": {
            "containers": [
                {
                    "name": "web",
                    "image": "zun-test/httpd:v1",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"cpu": cpu, "memory": "64Mi"},
                }
            ]
        },
        "service": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"path": "/", "port": 8080}},
        "updateStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            "progressDeadlineSeconds": deadline,
        },
    }


async def app_of(zun: ZunBed, project: str) -> Application:
    return await zun.store.get(Application, "web", project)


async def ready(zun: ZunBed, project: str, replicas: int, within: float = 60) -> Application:
    async def check() -> Application | None:
        app = await app_of(zun, project)
        s = app.status
        done = s.phase == "Ready" and s.ready_replicas == s.updated_replicas == replicas
        return app if done and s.observed_generation == app.metadata.generation else None

    found: Application = await zun.until(check, within, f"{project}/web Ready x{replicas}")
    return found


async def edit_spec(zun: ZunBed, project: str, **changes: Any) -> None:
    app = await app_of(zun, project)
    spec = app.spec.model_dump(by_alias=True, exclude_none=True) | changes
    app.spec = type(app.spec).model_validate(spec)
    await zun.store.update(app)


def deploy(kube: KubeControlPlane, project: str) -> Any:
    return kube.kubectl_json("-n", f"zun-{project}", "get", "deploy", "web")


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_application_converges_restores_drift_and_goes_on_delete(
    zun: ZunBed, kube: KubeControlPlane, project: str
) -> None:
    await zun.apply("Application", "web", app_spec(), project=project)
    app = await ready(zun, project, 3)
    assert app.status.condition("Available") is not None
    assert app.status.is_true("Available")
    world = deploy(kube, project)
    assert world["spec"]["replicas"] == 3 and world["status"]["readyReplicas"] == 3
    svc = kube.kubectl_json("-n", f"zun-{project}", "get", "svc", "web")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert f"127.0.0.1:{svc['spec']['ports'][0]['nodePort']}" in app.status.endpoints

    cluster = await zun.store.get(Cluster, "kube")
    nodes = kube.kubectl_json("get", "nodes")["items"]
    assert cluster.status.is_true("Ready") and cluster.status.reachable
    assert cluster.status.version == kube.kubectl_json("version")["serverVersion"]["gitVersion"]
    assert cluster.status.nodes == len(nodes)
    cpus = sum(int(n["status"]["allocatable"]["cpu"]) for n in nodes)
    assert cluster.status.capacity.cpu == cpus

    await edit_spec(zun, project, replicas=4)
    await ready(zun, project, 4)
    assert deploy(kube, project)["spec"]["replicas"] == 4

    kube.kubectl_run("-n", f"zun-{project}", "scale", "deploy/web", "--replicas=1")
    await zun.until(lambda: deploy(kube, project)["spec"]["replicas"] == 4, 40, "hand scale undone")

    await zun.store.delete(Application, "web", project)

    async def gone() -> bool:
        try:
            await app_of(zun, project)
        except NotFoundError:
            return True
        return False

    await zun.until(gone, 60, "Application record gone")
    for what in ("deploy", "svc", "rs", "pods"):
        assert kube.kubectl_json("-n", f"zun-{project}", "get", what)["items"] == [], what


@pytest.mark.timeout(180)
async def test_failing_upgrade_rolls_back_by_itself(
    zun: ZunBed, kube: KubeControlPlane, project: str
) -> None:
    await zun.apply("Application", "web", app_spec(deadline=3), project=project)
    good = (await ready(zun, project, 3)).status.current_revision

    # No kwok node has 500 cores: the new revision's pods are never scheduled nor Ready.
    broken = app_spec(deadline=3, cpu=500)
    await edit_spec(zun, project, template=broken["template"])

    async def rolled_back() -> Application | None:
        app = await app_of(zun, project)
        return app if app.status.is_true("RolledBack") else None

    app = await zun.until(rolled_back, 60, "condition RolledBack")
    assert app.status.condition("RolledBack").reason == "ProgressDeadlineExceeded"  # type: ignore[union-attr]
    assert app.status.failed_revision not in (None, good)
    app = await ready(zun, project, 3)
    assert app.status.current_revision == good
    world = deploy(kube, project)
    template = world["spec"]["template"]
    assert template["metadata"]["labels"][REVISION_LABEL] == good
    assert template["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "250m"
    pods = kube.kubectl_json("-n", f"zun-{project}", "get", "pods")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["metadata"]["labels"][REVISION_LABEL] for p in live} == {good}
