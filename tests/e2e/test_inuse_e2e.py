"""In-use protection and record ownership end to end: a controller process on a real etcd and the
real Docker engine. Records in use (a Cluster, Secret, Volume, PullSecret) are held on delete
with condition `InUse` naming their users; a GitOps repository never takes over a hand-made
record; an Application whose replica name is taken says so. Every check looks at the store and
at the engine through the Docker API.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from test_gitops_e2e import Repo, ctr, running
from testbed.docker import HTTPD_V1, HTTPD_V2, MAIN_SOCKET_URL, client, ensure_dockerd
from testbed.docker import ensure_test_images as images
from zun_bed import ZunBed, clean_engine
from zunctl_bed import ApiOnly, zunctl

from zun_controller.errors import NotFoundError
from zun_controller.models.application import Application, Cluster, Secret
from zun_controller.models.base import LABEL_NAME, LABEL_PROJECT, Resource
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.network import Volume
from zun_controller.models.pullsecret import PullSecret
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "application-docker.yaml"


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient
) -> AsyncIterator[ZunBed]:
    project = f"u{secrets.token_hex(3)}"
    bed = ZunBed(own_etcd, tmp_path, (project,))
    await bed.host("local", MAIN_SOCKET_URL)
    bed.start()
    yield bed
    await bed.close()
    clean_engine(engine, (project,))


async def fetch(zun: ZunBed, cls: type[Resource], name: str, project: str | None = None) -> Any:
    """The record, or None once it is gone."""
    try:
        return await zun.store.get(cls, name, project)
    except NotFoundError:
        return None


def in_use(obj: Resource | None) -> str | None:
    cond = obj.status.condition("InUse") if obj is not None else None
    return cond.message if cond is not None and cond.status.value == "True" else None


def engine_names(engine: docker.DockerClient, project: str) -> list[str]:
    """Record names of every engine container Zun made for the project (any state)."""
    found = engine.containers.list(
        all=True, ignore_removed=True, filters={"label": f"{LABEL_PROJECT}={project}"}
    )
    return sorted(c.labels[LABEL_NAME] for c in found)


def app_spec(cluster: str, replicas: int = 1) -> dict[str, Any]:
    template = {"containers": [{"name": "web", "image": HTTPD_V1}]}
    return {"cluster": cluster, "replicas": replicas, "template": template}


@pytest.mark.timeout(400)
async def test_a_cluster_in_use_is_held_until_its_applications_are_gone(
    zun: ZunBed, engine: docker.DockerClient
) -> None:
    p = zun.projects[0]
    await zun.apply("Cluster", "docker-local", {"type": "docker"})
    await zun.apply("Application", "web", app_spec("docker-local"), project=p)
    await zun.apply("Application", "shop", app_spec("docker-local"), project=p)
    await zun.until(lambda: len(running(engine, p)) == 2, 180, "one replica of each app")
    await zun.until(
        lambda: _protected(zun, Cluster, "docker-local"), 60, "the Cluster has its finalizer"
    )

    await zun.store.delete(Cluster, "docker-local")

    async def held() -> str | None:
        return in_use(await fetch(zun, Cluster, "docker-local"))

    message = await zun.until(held, 60, "Cluster InUse")
    assert message == f"used by Application {p}/shop, {p}/web"
    assert len(running(engine, p)) == 2  # nothing was let go or stopped
    await zun.store.delete(Application, "shop", p)

    async def only_web() -> bool:
        return await held() == f"used by Application {p}/web"

    await zun.until(only_web, 60, "InUse follows the users")
    await zun.store.delete(Application, "web", p)
    await zun.until(
        lambda: fetch_gone(zun, Cluster, "docker-local"), 120, "Cluster deleted once unused"
    )
    assert await fetch(zun, Application, "web", p) is None
    await zun.until(lambda: engine_names(engine, p) == [], 60, "the replicas left the engine")


async def _protected(
    zun: ZunBed, cls: type[Resource], name: str, project: str | None = None
) -> bool:
    obj = await fetch(zun, cls, name, project)
    return obj is not None and bool(obj.metadata.finalizers)


async def fetch_gone(
    zun: ZunBed, cls: type[Resource], name: str, project: str | None = None
) -> bool:
    return await fetch(zun, cls, name, project) is None


@pytest.mark.timeout(300)
async def test_a_secret_a_cluster_uses_is_held_until_the_cluster_is_gone(zun: ZunBed) -> None:
    tls = {"ca.pem": "x", "cert.pem": "y", "key.pem": "z"}
    await zun.apply("Secret", "swarm-tls", {"data": tls})
    swarm = {"type": "swarm", "endpoint": "tcp://127.0.0.1:1", "tlsSecret": {"name": "swarm-tls"}}
    await zun.apply("Cluster", "far-swarm", swarm)
    await zun.until(lambda: _protected(zun, Secret, "swarm-tls"), 60, "Secret finalizer")
    await zun.store.delete(Secret, "swarm-tls")

    async def held() -> str | None:
        return in_use(await fetch(zun, Secret, "swarm-tls"))

    assert await zun.until(held, 60, "Secret InUse") == "used by Cluster far-swarm"
    assert (await zun.store.get(Secret, "swarm-tls")).spec.data == tls
    await zun.store.delete(Cluster, "far-swarm")
    await zun.until(lambda: fetch_gone(zun, Secret, "swarm-tls"), 60, "Secret deleted once unused")
    assert await fetch(zun, Cluster, "far-swarm") is None


@pytest.mark.timeout(300)
async def test_a_volume_a_running_container_mounts_is_held(
    zun: ZunBed, engine: docker.DockerClient
) -> None:
    p = zun.projects[0]
    await zun.apply("Volume", "data", {}, project=p)
    mount = [{"volume": "data", "mountPath": "/data"}]
    await zun.apply("Container", "db", {"image": HTTPD_V1, "volumes": mount}, project=p)
    await zun.phase("db", p, "Running", 120)
    await zun.store.delete(Volume, "data", p)

    async def held() -> str | None:
        return in_use(await fetch(zun, Volume, "data", p))

    assert await zun.until(held, 60, "Volume InUse") == f"used by Container {p}/db"

    def volumes() -> list[str]:
        found = engine.volumes.list(filters={"label": f"{LABEL_PROJECT}={p}"})
        return [v.name for v in found]

    assert volumes() == [f"zun_{p}_data"]
    assert running(engine, p) == {"db": HTTPD_V1}
    await zun.store.delete(Container, "db", p)
    await zun.until(lambda: fetch_gone(zun, Volume, "data", p), 120, "Volume deleted once unused")
    await zun.until(lambda: volumes() == [], 30, "engine volume removed")


@pytest.mark.timeout(300)
async def test_a_pull_secret_a_running_container_names_is_held_until_the_container_is_gone(
    zun: ZunBed, engine: docker.DockerClient
) -> None:
    p = zun.projects[0]
    config = '{"auths": {"127.0.0.1:5999": {"username": "alice", "password": "pw-inuse"}}}'
    await zun.apply("PullSecret", "reg", {"data": {".dockerconfigjson": config}}, project=p)
    spec = {"image": HTTPD_V1, "imagePullSecrets": [{"name": "reg"}]}
    await zun.apply("Container", "web", spec, project=p)
    await zun.apply("Container", "plain", {"image": HTTPD_V1}, project=p)
    before = await zun.phase("web", p, "Running", 120)
    await zun.phase("plain", p, "Running", 120)
    await zun.until(lambda: _protected(zun, PullSecret, "reg", p), 60, "PullSecret finalizer")
    started = {c.name: c.attrs["State"]["StartedAt"] for c in _ours(engine, p)}

    await zun.store.delete(PullSecret, "reg", p)

    async def held() -> str | None:
        return in_use(await fetch(zun, PullSecret, "reg", p))

    assert await zun.until(held, 60, "PullSecret InUse") == f"used by Container {p}/web"
    secret = await zun.store.get(PullSecret, "reg", p)
    assert secret.metadata.deletion_timestamp and secret.spec.data[".dockerconfigjson"] == config
    after = await zun.store.get(Container, "web", p)
    assert (after.metadata.generation, after.spec) == (before.metadata.generation, before.spec)
    assert after.status.container_id == before.status.container_id
    assert {c.name: c.attrs["State"]["StartedAt"] for c in _ours(engine, p)} == started
    assert running(engine, p) == {"web": HTTPD_V1, "plain": HTTPD_V1}  # nothing else changed

    await zun.store.delete(Container, "web", p)
    await zun.until(lambda: fetch_gone(zun, PullSecret, "reg", p), 60, "released once unused")
    await zun.until(lambda: running(engine, p) == {"plain": HTTPD_V1}, 60, "web left the engine")
    assert (await zun.store.get(Container, "plain", p)).status.phase == "Running"


def _ours(engine: docker.DockerClient, project: str) -> list[Any]:
    found: list[Any] = engine.containers.list(
        all=True, ignore_removed=True, filters={"label": f"{LABEL_PROJECT}={project}"}
    )
    return found


@pytest.mark.timeout(400)
async def test_gitops_never_takes_over_a_hand_made_record(
    zun: ZunBed, engine: docker.DockerClient, tmp_path: Path
) -> None:
    p = zun.projects[0]
    await zun.apply("Container", "web", {"image": HTTPD_V1}, project=p)
    hand = await zun.phase("web", p, "Running", 120)
    repo = Repo(tmp_path / "repo", p)
    repo.commit({"web.yaml": [ctr("web", HTTPD_V2)], "api.yaml": [ctr("api")]})
    spec = {"url": f"file://{repo.path}", "intervalSeconds": 2}
    await zun.apply("GitRepository", "site", spec, project=p)

    async def conflict() -> str | None:
        obj = await zun.store.get(GitRepository, "site", p)
        cond = obj.status.condition("Ready")
        return cond.message if cond and cond.reason == "OwnershipConflict" else None

    message = await zun.until(conflict, 60, "OwnershipConflict")
    assert message.startswith(f"containers/{p}/web: owned by no writer (made by hand")
    await zun.until(lambda: running(engine, p) == {"web": HTTPD_V1, "api": HTTPD_V1}, 120, "api")
    now = await zun.container("web", p)
    assert now.spec.image == HTTPD_V1 and now.metadata.labels == {}
    assert now.metadata.generation == hand.metadata.generation
    assert now.status.container_id == hand.status.container_id  # the engine container is the same

    async def warned() -> bool:
        events = (await zun.store.list(Event, p)).items
        return any(e.spec.reason == "OwnershipConflict" for e in events)

    await zun.until(warned, 30, "a Warning Event on the GitRepository")

    last = repo.commit({"web.yaml": None, "api.yaml": None})

    async def applied() -> bool:
        obj = await zun.store.get(GitRepository, "site", p)
        return obj.status.last_applied_commit == last

    await zun.until(applied, 60, "the commit without the files applied")
    await zun.until(lambda: running(engine, p) == {"web": HTTPD_V1}, 60, "api pruned, web kept")
    kept = await zun.container("web", p)
    assert kept.status.container_id == hand.status.container_id


@pytest.mark.timeout(400)
async def test_an_application_whose_replica_name_is_taken_says_so(
    zun: ZunBed, engine: docker.DockerClient
) -> None:
    p = zun.projects[0]
    await zun.apply("Cluster", "docker-local", {"type": "docker"})
    await zun.apply("Application", "shop", app_spec("docker-local", replicas=0), project=p)

    async def revision() -> str | None:
        return (await zun.store.get(Application, "shop", p)).status.current_revision

    rev = await zun.until(revision, 60, "a revision chosen")
    taken = f"shop-{rev}-0"
    await zun.apply("Container", taken, {"image": HTTPD_V2}, project=p)
    await zun.phase(taken, p, "Running", 120)
    app = await zun.store.get(Application, "shop", p)
    app.spec.replicas = 1
    await zun.store.update(app)

    async def conflict() -> str | None:
        obj = await zun.store.get(Application, "shop", p)
        cond = obj.status.condition("Progressing")
        return cond.message if cond and cond.reason == "NameConflict" else None

    message = await zun.until(conflict, 60, "NameConflict on the Application")
    assert (
        message
        == f"Container {p}/{taken} exists and is owned by no writer (made by hand through the API)"
    )
    hand = await zun.container(taken, p)
    assert hand.spec.image == HTTPD_V2 and hand.metadata.owner_references == []
    await zun.store.delete(Container, taken, p)

    async def ready() -> bool:
        obj = await zun.store.get(Application, "shop", p)
        return obj.status.ready_replicas == 1

    await zun.until(ready, 180, "the replica made once the name is free")
    replica = await zun.container(taken, p)
    assert [r.name for r in replica.metadata.owner_references] == ["shop"]
    assert running(engine, p) == {taken: HTTPD_V1}


@pytest.mark.timeout(300)
async def test_an_application_is_not_let_go_while_its_engine_is_down_until_forced(
    zun: ZunBed, own_etcd: EtcdServer, tmp_path: Path
) -> None:
    p = zun.projects[0]
    api = ApiOnly(tmp_path, own_etcd.url)
    try:

        def ctl(*args: str) -> subprocess.CompletedProcess[str]:
            return zunctl(api.url, api.token, p, *args)

        down = {"type": "swarm", "endpoint": "tcp://127.0.0.1:1"}  # nothing listens there
        await zun.apply("Cluster", "down-swarm", down)
        await zun.apply("Application", "far", app_spec("down-swarm"), project=p)
        await zun.until(lambda: _protected(zun, Application, "far", p), 60, "App finalizer")
        assert ctl("delete", "application", "far").returncode == 0

        async def waiting() -> str | None:
            obj = await fetch(zun, Application, "far", p)
            cond = obj.status.condition("Terminating") if obj is not None else None
            return cond.message if cond is not None and cond.reason == "EngineUnavailable" else None

        message = await zun.until(waiting, 60, "Terminating: EngineUnavailable")
        assert "Cluster 'down-swarm'" in message and "zunctl delete --force" in message
        assert (await zun.store.get(Application, "far", p)).status.phase == "Terminating"
        held = in_use(await fetch(zun, Cluster, "down-swarm"))
        assert held is None  # the Cluster is not being deleted: no InUse to show

        forced = ctl("delete", "application", "far", "--force")
        assert forced.returncode == 0, forced.stderr
        assert forced.stdout == "application.zun.openstack.org/far force-deleted\n"
        assert "finalizers zun.openstack.org/application removed" in forced.stderr
        assert "is left as it is" in forced.stderr
        assert await fetch(zun, Application, "far", p) is None
        assert ctl("delete", "cluster", "down-swarm", "--wait", "--timeout", "60").returncode == 0
        assert await fetch(zun, Cluster, "down-swarm") is None
    finally:
        api.stop()


@pytest.mark.timeout(400)
async def test_the_readme_example_deleted_in_file_order_leaves_nothing(
    zun: ZunBed, own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient
) -> None:
    p = zun.projects[0]
    api = ApiOnly(tmp_path, own_etcd.url)
    try:

        def ctl(*args: str) -> subprocess.CompletedProcess[str]:
            return zunctl(api.url, api.token, p, *args, timeout=120)

        assert ctl("apply", "-f", str(EXAMPLE)).returncode == 0
        await zun.until(lambda: len(running(engine, p)) == 3, 180, "2 replicas and the balancer")
        await zun.until(lambda: _protected(zun, Cluster, "local-docker"), 60, "Cluster finalizer")
        deleted = ctl("delete", "-f", str(EXAMPLE))  # the Cluster first, then the Application
        assert deleted.returncode == 0, deleted.stderr

        async def nothing_left() -> bool:
            records = (await zun.store.list(Container, p)).items
            gone = await fetch(zun, Cluster, "local-docker") is None
            return gone and not records and engine_names(engine, p) == []

        await zun.until(nothing_left, 60, "no Container record, no engine container, no Cluster")
        assert await fetch(zun, Application, "shop", p) is None
    finally:
        api.stop()
