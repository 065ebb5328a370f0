"""kubectl on Zun's kinds: CRDs on a real kube-apiserver, the bridge process, the controller,
and containers that really run on Docker."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from testbed.kube import KubeControlPlane, start_control_plane
from zun_bed import ZUN, Process, ZunBed, clean_engine

from zun_controller.errors import NotFoundError
from zun_controller.models.container import Container
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
CRDS = Path(__file__).resolve().parents[2] / "crds"
EXAMPLES = CRDS.parent / "deploy" / "examples"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        plane.kubectl_run("apply", "-f", str(CRDS))
        plane.kubectl_run("wait", "--for=condition=Established", "crd", "--all", timeout=60)
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


class Bridge(Process):
    def __init__(self, etcd: EtcdServer, kube: KubeControlPlane, workdir: Path) -> None:
        super().__init__(workdir, "bridge")
        self.etcd, self.kube = etcd, kube

    def start(self) -> None:
        cmd = [ZUN, "bridge", "--etcd", self.etcd.url, "--kubeconfig", str(self.kube.kubeconfig)]
        self.launch([*cmd, "--health-port", "0", "--identity", f"bridge-{self.starts + 1}"])


@pytest.fixture
async def world(
    own_etcd: EtcdServer, tmp_path: Path, kube: KubeControlPlane, engine: docker.DockerClient
) -> AsyncIterator[tuple[ZunBed, Bridge, str]]:
    namespace = f"k{secrets.token_hex(3)}"
    kube.kubectl_run("create", "namespace", namespace)
    zun = ZunBed(own_etcd, tmp_path, (namespace,))
    await zun.host("local", MAIN_SOCKET_URL)
    zun.start()
    bridge = Bridge(own_etcd, kube, tmp_path)
    bridge.start()
    yield zun, bridge, namespace
    kube.kubectl_run("delete", "containers", "--all", "-n", namespace, "--wait=false", check=False)
    bridge.stop()
    await zun.close()
    clean_engine(engine, (namespace,))
    kube.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)


def manifest(name: str, namespace: str, **spec: Any) -> str:
    body = {
        "apiVersion": "zun.openstack.org/v1alpha1",
        "kind": "Container",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": HTTPD_V1, **spec},
    }
    return json.dumps(body)


def cr(kube: KubeControlPlane, namespace: str, name: str) -> dict[str, Any] | None:
    proc = kube.kubectl_run("get", "container", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def running_in_docker(engine: docker.DockerClient, namespace: str, name: str) -> list[Any]:
    labels = [f"zun.openstack.org/project={namespace}", f"zun.openstack.org/name={name}"]
    found: list[Any] = engine.containers.list(ignore_removed=True, filters={"label": labels})
    return found


@pytest.mark.timeout(300)
async def test_kubectl_apply_get_delete_drive_real_containers(
    world: tuple[ZunBed, Bridge, str], kube: KubeControlPlane, engine: docker.DockerClient
) -> None:
    zun, _, ns = world
    kube.kubectl_run("apply", "-f", "-", input_text=manifest("web", ns))
    await zun.until(lambda: len(running_in_docker(engine, ns, "web")) == 1, 90, "container runs")

    def phase_up() -> bool:
        body = cr(kube, ns, "web")
        return bool(body) and body.get("status", {}).get("phase") == "Running"  # type: ignore[union-attr]

    await zun.until(phase_up, 60, "status.phase Running in the custom resource")
    table = kube.kubectl_run("get", "containers", "-n", ns).stdout
    assert "web" in table and "Running" in table and "PHASE" in table.upper()
    record = await zun.container("web", ns)
    assert record.metadata.annotations["zun.openstack.org/source"] == "kubernetes"

    kube.kubectl_run("delete", "container", "web", "-n", ns, timeout=120)
    assert running_in_docker(engine, ns, "web") == []
    with pytest.raises(NotFoundError):
        await zun.store.get(Container, "web", ns)


@pytest.mark.timeout(300)
async def test_invalid_resource_gets_a_condition_naming_the_field(
    world: tuple[ZunBed, Bridge, str], kube: KubeControlPlane
) -> None:
    zun, _, ns = world
    bad = manifest("bad", ns, resources={"memory": "12Qi"})
    kube.kubectl_run("apply", "-f", "-", input_text=bad)

    def says_invalid() -> str | None:
        body = cr(kube, ns, "bad") or {}
        conds = body.get("status", {}).get("conditions", [])
        return next((c["message"] for c in conds if c.get("type") == "Invalid"), None)

    message = await zun.until(says_invalid, 60, "Invalid condition")
    assert "spec.resources.memory" in message
    with pytest.raises(NotFoundError):
        await zun.store.get(Container, "bad", ns)


@pytest.mark.timeout(400)
async def test_bridge_sigkilled_midway_loses_and_doubles_nothing(
    world: tuple[ZunBed, Bridge, str], kube: KubeControlPlane, engine: docker.DockerClient
) -> None:
    zun, bridge, ns = world
    names = [f"m{i}" for i in range(6)]
    docs = "\n---\n".join(manifest(n, ns) for n in names[:3])
    kube.kubectl_run("apply", "-f", "-", input_text=docs)

    async def some_records() -> bool:
        return len((await zun.store.list(Container, ns)).items) >= 1

    await zun.until(some_records, 60, "first records")
    bridge.kill()
    docs = "\n---\n".join(manifest(n, ns) for n in names[3:])
    kube.kubectl_run("apply", "-f", "-", input_text=docs)
    bridge.start()
    for name in names:
        await zun.until(lambda n=name: len(running_in_docker(engine, ns, n)) == 1, 120, name)  # type: ignore[misc]
    records = (await zun.store.list(Container, ns)).items
    assert sorted(r.name for r in records) == names
    for name in names:
        assert len(running_in_docker(engine, ns, name)) == 1


@pytest.mark.timeout(400)
async def test_kubectl_apply_of_the_example_application_converges_on_docker(
    world: tuple[ZunBed, Bridge, str], kube: KubeControlPlane, engine: docker.DockerClient
) -> None:
    zun, _, ns = world
    kube.kubectl_run("apply", "-n", ns, "-f", str(EXAMPLES / "application-docker.yaml"))

    def replicas_running() -> bool:
        found = engine.containers.list(
            ignore_removed=True, filters={"label": f"zun.openstack.org/project={ns}"}
        )
        names = [c.labels.get("zun.openstack.org/name", "") for c in found]
        return sum(1 for n in names if n.startswith("shop-") and n != "shop-lb") == 2

    await zun.until(replicas_running, 180, "2 replicas running in Docker")

    def ready_up() -> bool:
        proc = kube.kubectl_run("get", "application", "shop", "-n", ns, "-o", "json", check=False)
        status = json.loads(proc.stdout).get("status", {}) if proc.returncode == 0 else {}
        return status.get("readyReplicas") == 2

    await zun.until(ready_up, 120, "readyReplicas 2 in the custom resource")
    assert "shop" in kube.kubectl_run("get", "applications", "-n", ns).stdout
    kube.kubectl_run("delete", "application", "shop", "-n", ns, timeout=180)

    def all_gone() -> bool:
        return not engine.containers.list(
            ignore_removed=True, all=True, filters={"label": f"zun.openstack.org/project={ns}"}
        )

    await zun.until(all_gone, 120, "everything the app made removed")


@pytest.mark.timeout(300)
async def test_a_custom_resource_never_takes_over_a_hand_made_record(
    world: tuple[ZunBed, Bridge, str], kube: KubeControlPlane, engine: docker.DockerClient
) -> None:
    zun, _, ns = world
    await zun.apply("Container", "web", {"image": HTTPD_V1}, project=ns)
    hand = await zun.phase("web", ns, "Running", 120)
    kube.kubectl_run("apply", "-f", "-", input_text=manifest("web", ns, state="Stopped"))

    def conflict() -> str | None:
        conds = (cr(kube, ns, "web") or {}).get("status", {}).get("conditions", [])
        return next((c["message"] for c in conds if c.get("reason") == "OwnershipConflict"), None)

    message = await zun.until(conflict, 60, "OwnershipConflict condition on the resource")
    assert message.startswith(f"containers/{ns}/web: owned by no writer (made by hand")
    record = await zun.container("web", ns)
    assert record.spec == hand.spec and record.metadata.annotations == {}
    assert [c.id for c in running_in_docker(engine, ns, "web")] == [hand.status.container_id]
    kube.kubectl_run("delete", "container", "web", "-n", ns, timeout=120)
    assert (await zun.container("web", ns)).status.container_id == hand.status.container_id
    assert [c.id for c in running_in_docker(engine, ns, "web")] == [hand.status.container_id]
