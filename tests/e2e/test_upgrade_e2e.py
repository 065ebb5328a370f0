"""An upgrade of the controller never restarts a user's workload.

The previous code (`PREVIOUS`, a git worktree of that commit installed in a virtualenv of its
own) runs `zun-controller run` against a real etcd and real engines and makes Containers, an
Application on a docker Cluster and, when the main engine can be a Swarm manager, one on a
Swarm; a second test does the same with an Application on Kubernetes (the test bed's control
plane). It is stopped; the current code's controller starts on the same etcd and engines and
reconciles every record a few times. Then nothing outside may have moved (the same engine
container ids and start times, the same Swarm service version and tasks), no Application may
have rolled (the same `status.currentRevision`), and no record may have been rewritten except
its status (generation, spec and metadata as before; finalizers may only be added).

Moving `PREVIOUS` forward: set it to the commit id of the newest release (or of main before
the change under test), by hand, once that code's hashes are the ones on running systems.
The test compares that code with whatever the working tree is, so it needs no other edit.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from prom_bed import free_port
from testbed.docker import MAIN_SOCKET_URL, client, ensure_dockerd, extra_engine_with_images
from testbed.kube import KubeControlPlane, start_control_plane
from zun_bed import ZunBed, clean_engine
from zunctl_bed import ZUN, ApiOnly

from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_MANAGED_BY, LABEL_PROJECT, MANAGED_BY
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
LABEL_REVISION = "zun.openstack.org/revision"

#: the code the upgrade starts from: main before the hash rule
PREVIOUS = "8b9b570"
REPO = Path(__file__).resolve().parents[2]
#: an engine of this module's own: other sessions' controllers sweep Zun's containers on the
#: shared main engine when their stores do not know them
ENGINE_NAME = "zunupg"
#: starts of the current code before the world is compared
ROUNDS = 2
#: the leader lease: a graceful stop revokes it, so the next controller leads at once; a
#: short one was lost under the load of a Kubernetes control plane on two cores
LEASE = ("--lease-ttl", "10")


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def previous_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`zun-controller` of PREVIOUS, in a worktree and virtualenv of its own. The virtualenv
    sees this environment's packages, so pip installs only what that code needs more."""
    if _git("cat-file", "-e", f"{PREVIOUS}^{{commit}}").returncode != 0:
        pytest.skip(f"git history absent: commit {PREVIOUS} is not in {REPO}")
    base = tmp_path_factory.mktemp("previous")
    tree, venv = base / "tree", base / "venv"
    added = _git("worktree", "add", "--detach", str(tree), PREVIOUS)
    assert added.returncode == 0, added.stderr
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        purelib = _purelib(venv / "bin" / "python")
        (purelib / "zz_current_environment.pth").write_text(str(_purelib(Path(sys.executable))))
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-e", str(tree)],
            check=True,
            timeout=300,
            capture_output=True,
        )
        yield venv / "bin" / "zun-controller"
    finally:
        _git("worktree", "remove", "--force", str(tree))


def _purelib(python: Path) -> Path:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    with extra_engine_with_images(ENGINE_NAME) as url:
        yield url


@pytest.fixture(scope="module")
def engine(engine_url: str) -> Iterator[docker.DockerClient]:
    engine = client(engine_url)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def swarm() -> Iterator[docker.DockerClient | None]:
    """The main engine as a single-node Swarm manager, or None when it cannot be one."""
    engine = client(ensure_dockerd())
    if engine.info()["Swarm"]["LocalNodeState"] != "active":
        done = subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            engine.close()
            yield None
            return
    yield engine
    engine.close()


class Bed(ZunBed):
    """A controller process that is either PREVIOUS's or the current code's."""

    def __init__(self, etcd: EtcdServer, workdir: Path, project: str, previous: Path) -> None:
        super().__init__(etcd, workdir, (project,))
        self.previous, self.metrics_port = previous, free_port()

    def start_previous(self) -> None:
        self.launch(
            [str(self.previous), "run", "--etcd", self.etcd.url, "--health-port", "0", *LEASE]
        )

    def start_current(self) -> None:
        zun = str(Path(sys.executable).with_name("zun-controller"))
        self.launch(
            [zun, "run", "--etcd", self.etcd.url, "--health-port", str(self.metrics_port), *LEASE]
        )

    def reconciles(self, controller: str) -> int:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=3).text
        except httpx.HTTPError:
            return 0
        pattern = (
            rf'^controller_runtime_reconcile_total\{{[^}}]*controller="{controller}"[^}}]*\}} (\S+)'
        )
        return int(sum(float(v) for v in re.findall(pattern, text, re.MULTILINE)))


@pytest.fixture
async def bed(
    own_etcd: EtcdServer,
    tmp_path: Path,
    engine: docker.DockerClient,
    previous_controller: Path,
    swarm: docker.DockerClient | None,
) -> AsyncIterator[Bed]:
    project = f"u{secrets.token_hex(3)}"
    bed = Bed(own_etcd, tmp_path, project, previous_controller)
    try:
        yield bed
    finally:
        await bed.close()
        clean_engine(engine, (project,))
        if swarm is not None:
            for service in swarm.services.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
                service.remove()
            _remove_network(swarm, f"zun-swarm-{project}")


def _remove_network(engine: docker.DockerClient, name: str) -> None:
    """The project's Swarm network (in use until the removed service's tasks end)."""
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


def _app(cluster: str, replicas: int) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "replicas": replicas,
        "template": {"containers": [{"name": "httpd", "image": "zun-test/httpd:v1"}]},
        "service": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
    }


CONTAINERS: dict[str, dict[str, Any]] = {
    "plain": {"image": "zun-test/httpd:v1"},
    "rich": {
        "image": "zun-test/httpd:v1",
        "env": [{"name": "GREETING", "value": "hi"}],
        "labels": {"tier": "front"},
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"cpu": "250m", "memory": "64Mi"},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
        "restartPolicy": "OnFailure",
    },
}


async def _made_by_previous(bed: Bed, engine_url: str, with_swarm: bool) -> list[str]:
    """The records, made and Ready under PREVIOUS; the Application names."""
    project = bed.projects[0]
    await bed.host("upg", engine_url)
    await bed.apply("Cluster", "dk", {"type": "docker"})
    apps = {"web": _app("dk", 2)}
    if with_swarm:
        await bed.apply("Cluster", f"sw-{project}", {"type": "swarm", "endpoint": MAIN_SOCKET_URL})
        apps["swarmweb"] = _app(f"sw-{project}", 2)
    for name, spec in CONTAINERS.items():
        await bed.apply("Container", name, spec, project=project)
    for name, spec in apps.items():
        await bed.apply("Application", name, spec, project=project)
    bed.start_previous()
    for name in CONTAINERS:
        await bed.until(lambda n=name: _ready(bed, n), 120, f"Container {name} Ready")  # type: ignore[misc]
    for name in apps:
        await bed.until(lambda n=name: _app_ready(bed, n), 150, f"Application {name} Ready")  # type: ignore[misc]
    return list(apps)


async def _ready(bed: Bed, name: str) -> bool:
    obj = await bed.store.get(Container, name, bed.projects[0])
    return obj.status.phase == "Running" and obj.status.is_true("Ready")


async def _app_ready(bed: Bed, name: str) -> bool:
    obj = await bed.store.get(Application, name, bed.projects[0])
    return obj.status.phase == "Ready" and obj.status.ready_replicas == obj.spec.replicas


def _engine_world(engine: docker.DockerClient, project: str) -> dict[str, Any]:
    labels = [f"{LABEL_MANAGED_BY}={MANAGED_BY}", f"{LABEL_PROJECT}={project}"]
    found = engine.containers.list(all=True, filters={"label": labels})
    return {
        c.id: (c.name, c.attrs["State"]["StartedAt"], c.attrs["RestartCount"], c.status)
        for c in found
    }


def _swarm_world(swarm: docker.DockerClient | None, project: str) -> dict[str, Any]:
    if swarm is None:
        return {}
    world: dict[str, Any] = {}
    for service in swarm.services.list(filters={"label": f"{LABEL_PROJECT}={project}"}):
        raw = swarm.api.inspect_service(service.id)
        tasks = swarm.api.tasks(filters={"service": service.id, "desired-state": "running"})
        world[raw["Spec"]["Name"]] = (
            raw["ID"],
            raw["Version"]["Index"],
            sorted(
                (t["ID"], t["Status"].get("ContainerStatus", {}).get("ContainerID")) for t in tasks
            ),
        )
    return world


def _task_container(task: dict[str, Any]) -> str | None:
    found: str | None = task["Status"].get("ContainerStatus", {}).get("ContainerID")
    return found


async def _records(bed: Bed) -> dict[str, dict[str, Any]]:
    """Every record but Events, as the current models read it: what a spec or metadata
    write would change (status left out)."""
    kvs, _ = await bed.store.list_raw("/zun/registry/")
    out: dict[str, dict[str, Any]] = {}
    for kv in kvs:
        if "/events/" in kv.key:
            continue
        obj = parse(json.loads(kv.value))
        meta = obj.metadata.model_dump(mode="json", exclude={"resource_version", "finalizers"})
        out[kv.key] = {
            "metadata": meta,
            "finalizers": set(obj.metadata.finalizers),
            "spec": obj.spec.model_dump(mode="json"),  # type: ignore[attr-defined]
            "revision": getattr(obj.status, "current_revision", None),
        }
    return out


async def _current_code_reconciles_everything(bed: Bed, records: dict[str, Any]) -> None:
    """The current code started ROUNDS times: each start reconciles every record (its lists);
    on the first, every Application once more on its own poll."""

    def count(plural: str) -> int:
        return sum(f"/{plural}/" in k for k in records)

    for start in range(ROUNDS):
        want = {
            "container": count("containers"),
            "application": count("applications") * (2 if start == 0 else 1),
        }
        bed.start_current()
        await bed.until(
            lambda w=want: all(bed.reconciles(c) >= n for c, n in w.items()),  # type: ignore[misc]
            90,
            f"reconciles {want}",
        )
        bed.stop()


@pytest.mark.timeout(420)
async def test_an_upgrade_recreates_rolls_and_rewrites_nothing(
    bed: Bed, engine: docker.DockerClient, engine_url: str, swarm: docker.DockerClient | None
) -> None:
    project = bed.projects[0]
    apps = await _made_by_previous(bed, engine_url, swarm is not None)
    bed.stop()
    containers = _engine_world(engine, project)
    services = _swarm_world(swarm, project)
    records = await _records(bed)
    assert len(containers) == len(CONTAINERS) + 3  # two replicas and the balancer
    assert len(services) == len(apps) - 1

    await _current_code_reconciles_everything(bed, records)

    assert _engine_world(engine, project) == containers, "engine containers recreated"
    assert _swarm_world(swarm, project) == services, "a Swarm service was updated"
    await _records_unchanged(bed, records, apps)


async def _records_unchanged(bed: Bed, records: dict[str, Any], apps: list[str]) -> None:
    after = await _records(bed)
    assert set(after) == set(records)
    for key, before in records.items():
        now = after[key]
        assert now["revision"] == before["revision"], f"{key} rolled"
        assert now["spec"] == before["spec"], f"{key}: spec rewritten"
        assert now["metadata"] == before["metadata"], f"{key}: metadata rewritten"
        assert before["finalizers"] <= now["finalizers"], f"{key}: finalizers removed"
    for name in apps:
        assert await _app_ready(bed, name), f"Application {name} not Ready"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


def _kube_world(kube: KubeControlPlane, project: str) -> dict[str, Any]:
    """What a roll or a rewrite would change: each object's uid, spec generation, revision."""
    doc = kube.kubectl_json("get", "deployments,replicasets,pods,services", "-n", project)
    return {
        f"{i['kind']}/{i['metadata']['name']}": (
            i["metadata"]["uid"],
            i["metadata"].get("generation"),
            (i["metadata"].get("labels") or {}).get(LABEL_REVISION),
        )
        for i in doc["items"]
    }


@pytest.mark.timeout(420)
async def test_an_upgrade_on_kubernetes_rolls_nothing(
    own_etcd: EtcdServer, tmp_path: Path, previous_controller: Path, kube: KubeControlPlane
) -> None:
    project = f"k{secrets.token_hex(3)}"
    bed = Bed(own_etcd, tmp_path, project, previous_controller)
    try:
        kubeconfig = kube.kubeconfig.read_text()
        await bed.apply("Secret", "kube-admin", {"data": {"kubeconfig": kubeconfig}})
        secret = {"type": "kubernetes", "kubeconfigSecret": {"name": "kube-admin"}}
        await bed.apply("Cluster", "kube", secret)
        await bed.apply("Application", "web", _app("kube", 2), project=project)
        bed.start_previous()
        await bed.until(lambda: _app_ready(bed, "web"), 150, "Application web Ready")
        bed.stop()
        world, records = _kube_world(kube, project), await _records(bed)
        assert any(k.startswith("Deployment/") for k in world)

        await _current_code_reconciles_everything(bed, records)

        assert _kube_world(kube, project) == world, "Kubernetes objects rolled or rewritten"
        await _records_unchanged(bed, records, ["web"])
    finally:
        await bed.close()
        kube.kubectl_run("delete", "namespace", project, "--ignore-not-found", "--wait=false")


def _make_token(zun: Path | str, etcd: EtcdServer, name: str) -> str:
    made = subprocess.run(
        [str(zun), "token", "--name", name, "--role", "member", "--project", "demo",
         "--etcd", etcd.url],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return made.stdout.strip()


def _answer(api: ApiOnly, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{api.url}/apis/zun.openstack.org/v1alpha1/projects/demo/containers"
    return httpx.get(url, headers=headers, timeout=10).status_code


def test_tokens_work_across_an_upgrade_and_a_rollback(
    own_etcd: EtcdServer, tmp_path: Path, previous_controller: Path
) -> None:
    """PREVIOUS's tokens keep working under the current API (they never expire), and what the
    current code writes of a token (createdAt, expiresAt, lastUsedAt) PREVIOUS still reads."""
    old = _make_token(previous_controller, own_etcd, "old")
    new = _make_token(ZUN, own_etcd, "new")
    (tmp_path / "current").mkdir()
    (tmp_path / "previous").mkdir()
    current = ApiOnly(tmp_path / "current", own_etcd.url)
    try:
        assert _answer(current, old) == 200 and _answer(current, new) == 200
        admin = {"Authorization": f"Bearer {current.token}"}
        listed = httpx.get(
            f"{current.url}/apis/zun.openstack.org/v1alpha1/tokens", headers=admin, timeout=10
        ).json()["items"]
        by_name = {t["name"]: t for t in listed}
        assert "expiresAt" not in by_name["old"] and by_name["new"]["expiresAt"]
        deadline = time.monotonic() + 10
        while not all(t.get("lastUsedAt") for t in listed if t["name"] in ("old", "new")):
            assert time.monotonic() < deadline, f"lastUsedAt not written: {listed}"
            time.sleep(0.2)
            listed = httpx.get(
                f"{current.url}/apis/zun.openstack.org/v1alpha1/tokens", headers=admin, timeout=10
            ).json()["items"]
        previous = ApiOnly(tmp_path / "previous", own_etcd.url, zun=str(previous_controller))
        try:
            assert _answer(previous, old) == 200 and _answer(previous, new) == 200
            assert _answer(previous, current.token) == 200
            assert _answer(current, previous.token) == 200
        finally:
            previous.stop()
    finally:
        current.stop()
