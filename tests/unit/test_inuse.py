"""The in-use rule per kind (Cluster, Secret, Host, Volume, Network, PullSecret) and the
Application's delete with its engine out of reach, on the in-memory store with fake engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from test_applications import V1, Bed, _template
from test_runtime_reconcilers import IMAGES
from test_runtime_reconcilers import Bed as RuntimeBed

from zun_controller.engine.manager import Manager
from zun_controller.errors import NotFoundError, TransientError
from zun_controller.models.application import Application, Cluster, Secret
from zun_controller.models.base import ObjectMeta, OwnerReference, Resource
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.network import Network, Volume
from zun_controller.models.pullsecret import PullSecret
from zun_controller.reconcilers import orchestrators
from zun_controller.reconcilers.app_setup import ApplicationControllers
from zun_controller.reconcilers.inuse import IN_USE_FINALIZER, User, used_by
from zun_controller.reconcilers.pull_secret import pull_secret_users


def in_use(obj: Resource | None) -> str | None:
    """The message of a record's InUse condition (None without one)."""
    cond = obj.status.condition("InUse") if obj is not None else None
    return cond.message if cond is not None and cond.status.value == "True" else None


@asynccontextmanager
async def running(manager: Manager) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    """Applications on docker Cluster `c1` run by a fake orchestrator."""
    b = Bed()
    async with running(b.manager):
        await b.apply("Cluster", "c1", {"type": "docker"})
        yield b


@pytest.fixture
async def runtime() -> AsyncIterator[RuntimeBed]:
    """The reference implementation's kinds on fake engines."""
    b = RuntimeBed()
    async with running(b.manager):
        yield b


def protected(obj: Resource | None) -> bool:
    return obj is not None and IN_USE_FINALIZER in obj.metadata.finalizers


async def gone(store: Any, cls: type[Resource], name: str, project: str | None = None) -> bool:
    try:
        await store.get(cls, name, project)
    except NotFoundError:
        return True
    return False


def test_users_are_named_by_kind_and_place() -> None:
    users = [
        User("Application", "web", "demo"),
        User("Container", "db", "demo"),
        User("Application", "shop", "demo"),
        User("Application", "web", "demo"),
    ]
    assert used_by(users) == "used by Application demo/shop, demo/web; Container demo/db"
    assert used_by([User("Cluster", "k1")]) == "used by Cluster k1"


async def app(bed: Bed, name: str, project: str = "demo", cluster: str = "c1") -> None:
    body = {"cluster": cluster, "replicas": 1, "template": _template(V1)}
    await bed.apply("Application", name, body, project=project)


def cluster(bed: Bed, name: str = "c1") -> Cluster | None:
    return bed.ctl.clusters.get_by_name(name)


async def test_a_cluster_is_held_while_applications_use_it(bed: Bed) -> None:
    await app(bed, "web")
    await app(bed, "shop")
    await bed.until(lambda: len(bed.engine.apps) == 2)
    await bed.until(lambda: protected(cluster(bed)))
    await bed.store.delete(Cluster, "c1")
    await bed.until(lambda: in_use(cluster(bed)) == "used by Application demo/shop, demo/web")
    assert len(bed.engine.apps) == 2  # nothing was let go
    await bed.store.delete(Application, "shop", "demo")
    await bed.until(lambda: in_use(cluster(bed)) == "used by Application demo/web")
    await bed.store.delete(Application, "web", "demo")
    await bed.until(lambda: cluster(bed) is None)
    assert bed.engine.apps == {}  # each Application cleaned up on its engine first
    assert await gone(bed.store, Cluster, "c1")


async def test_a_secret_is_held_while_a_cluster_names_it(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrators, "KUBERNETES_MODULE", "zun_controller.no_such_module")
    await bed.apply("Secret", "kc", {"data": {"kubeconfig": "apiVersion: v1"}})
    await bed.apply("Cluster", "k1", {"type": "kubernetes", "kubeconfigSecret": {"name": "kc"}})

    def secret() -> Secret | None:
        return bed.ctl.secrets.get_by_name("kc")

    await bed.until(lambda: protected(secret()))
    await bed.store.delete(Secret, "kc")
    await bed.until(lambda: in_use(secret()) == "used by Cluster k1")
    assert (await bed.store.get(Secret, "kc")).spec.data == {"kubeconfig": "apiVersion: v1"}
    await bed.store.delete(Cluster, "k1")
    await bed.until(lambda: secret() is None)
    assert await gone(bed.store, Secret, "kc") and await gone(bed.store, Cluster, "k1")


async def _force_away(bed: Bed, cls: type[Resource], name: str) -> None:
    """What `zunctl delete --force` does: delete, then empty the finalizers."""
    await bed.store.delete(cls, name)
    obj = await bed.store.get(cls, name)
    obj.metadata.finalizers = []
    await bed.store.update(obj)


async def test_an_application_whose_cluster_is_gone_waits_and_cleans_up_when_it_returns(
    bed: Bed,
) -> None:
    await app(bed, "web")
    await bed.until(lambda: "applications/demo/web" in bed.engine.apps)
    await bed.until(lambda: bool(bed.get().metadata.finalizers))
    await _force_away(bed, Cluster, "c1")
    await bed.until(lambda: cluster(bed) is None)
    await bed.store.delete(Application, "web", "demo")

    def terminating() -> str | None:
        cond = bed.get().status.condition("Terminating")
        return cond.reason if cond is not None else None

    await bed.until(lambda: terminating() == "ClusterNotFound")
    cond = bed.get().status.condition("Terminating")
    assert cond is not None and "'c1'" in cond.message and "--force" in cond.message
    assert bed.get().status.phase == "Terminating"
    assert "applications/demo/web" in bed.engine.apps  # not let go
    await bed.apply("Cluster", "c1", {"type": "docker"})
    await bed.until(lambda: bed.ctl.apps.get_by_name("web", "demo") is None)
    assert bed.engine.apps == {}


async def test_an_application_whose_engine_does_not_answer_waits_on_delete(bed: Bed) -> None:
    await app(bed, "web")
    await bed.until(lambda: "applications/demo/web" in bed.engine.apps)
    await bed.until(lambda: bool(bed.get().metadata.finalizers))
    real_delete = bed.engine.delete

    async def unreachable(application: Application) -> bool:
        raise TransientError("engine: connection refused")

    bed.engine.delete = unreachable  # type: ignore[method-assign,assignment]
    await bed.store.delete(Application, "web", "demo")

    def reason() -> str | None:
        cond = bed.get().status.condition("Terminating")
        return cond.reason if cond is not None else None

    await bed.until(lambda: reason() == "EngineUnavailable")
    cond = bed.get().status.condition("Terminating")
    assert cond is not None and "connection refused" in cond.message and "c1" in cond.message
    bed.engine.delete = real_delete  # type: ignore[method-assign]
    await bed.until(lambda: bed.ctl.apps.get_by_name("web", "demo") is None, within=15)
    assert bed.engine.apps == {}


def host(bed: RuntimeBed, name: str = "a") -> Host | None:
    return bed.ctl.hosts.get_by_name(name)


async def test_a_host_is_held_while_containers_are_placed_on_it(runtime: RuntimeBed) -> None:
    bed = runtime
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    obj = await bed.phase("web", "Running")
    await bed.until(lambda: protected(host(bed)))
    await bed.store.delete(Host, "a")
    await bed.until(lambda: in_use(host(bed)) == "used by Container demo/web")
    engine = bed.engine("a")
    assert engine._containers[obj.status.container_id or ""].status.value == "running"
    await bed.store.delete(Container, "web", "demo")
    await bed.until(lambda: host(bed) is None, within=15)
    assert not engine._containers  # the container was removed from the engine first


async def test_a_volume_in_use_names_its_containers(runtime: RuntimeBed) -> None:
    bed = runtime
    await bed.host("a")
    await bed.apply("Volume", "data", {})
    mount = {"volumes": [{"volume": "data", "mountPath": "/data"}]}
    await bed.apply("Container", "db", {"image": IMAGES[0], **mount})
    await bed.phase("db", "Running")
    await bed.store.delete(Volume, "data", "demo")

    def volume() -> Volume | None:
        return bed.ctl.volumes.get_by_name("data", "demo")

    await bed.until(lambda: in_use(volume()) == "used by Container demo/db")
    await bed.store.delete(Container, "db", "demo")
    await bed.until(lambda: volume() is None, within=15)


async def test_a_network_is_held_while_a_container_names_it(runtime: RuntimeBed) -> None:
    bed = runtime
    await bed.host("a")
    await bed.apply("Network", "backend", {})
    # a Container naming the network: held by the record even before it runs there
    await bed.apply("Container", "api", {"image": "zun-test/none:v0", "networks": ["backend"]})

    def network() -> Network | None:
        return bed.ctl.networks.get_by_name("backend", "demo")

    await bed.until(lambda: (network() or Network(metadata={"name": "x"})).status.phase == "Ready")
    await bed.store.delete(Network, "backend", "demo")
    await bed.until(lambda: in_use(network()) == "used by Container demo/api")
    await bed.store.delete(Container, "api", "demo")
    await bed.until(lambda: network() is None, within=15)


REG = '{"auths": {"127.0.0.1:5000": {"username": "alice", "password": "pw"}}}'
PULLING = {"imagePullSecrets": [{"name": "reg"}]}


@pytest.fixture
async def with_apps() -> AsyncIterator[tuple[RuntimeBed, ApplicationControllers]]:
    """The reference implementation's kinds and Applications on docker Clusters over them."""
    b = RuntimeBed()
    apps = ApplicationControllers(b.manager, b.store, b.manager.metrics, runtime=b.ctl)
    async with running(b.manager):
        await b.host("a")
        yield b, apps


def pull_secret(bed: RuntimeBed, project: str = "demo") -> PullSecret | None:
    return bed.ctl.pull_secrets.get_by_name("reg", project)


async def test_a_pull_secret_is_held_while_containers_and_applications_name_it(
    with_apps: tuple[RuntimeBed, ApplicationControllers],
) -> None:
    bed, apps = with_apps
    await bed.apply("PullSecret", "reg", {"data": {".dockerconfigjson": REG}})
    await bed.apply("PullSecret", "reg", {"data": {".dockerconfigjson": REG}}, project="other")
    await bed.apply("Cluster", "c1", {"type": "docker"}, project=None)
    await bed.apply("Container", "web", {"image": IMAGES[0], **PULLING})
    await bed.apply("Container", "plain", {"image": IMAGES[0]})
    template = {"containers": [{"name": "w", "image": IMAGES[0], **PULLING}]}
    await bed.apply("Application", "shop", {"cluster": "c1", "template": template})
    await bed.phase("web", "Running")

    def replicas() -> list[Container]:
        return [c for c in bed.ctl.containers.all() if c.name.startswith("shop-")]

    await bed.until(lambda: len(replicas()) == 1, within=10)
    assert replicas()[0].spec.image_pull_secrets[0].name == "reg"  # a user too, by its app
    await bed.until(lambda: protected(pull_secret(bed)))
    await bed.store.delete(PullSecret, "reg", "demo")
    # the replica is the Application's: named through it, not beside it
    await bed.until(
        lambda: in_use(pull_secret(bed)) == "used by Application demo/shop; Container demo/web"
    )
    held = pull_secret(bed)
    assert held is not None and held.spec.data[".dockerconfigjson"] == REG
    assert in_use(pull_secret(bed, "other")) is None  # another project's is no one's business
    await bed.store.delete(Application, "shop", "demo")
    await bed.until(lambda: in_use(pull_secret(bed)) == "used by Container demo/web", within=10)
    assert bed.container("web").status.phase == "Running"  # nothing else changed
    await bed.store.delete(Container, "web", "demo")
    await bed.until(lambda: pull_secret(bed) is None, within=10)
    assert await gone(bed.store, PullSecret, "reg", "demo")
    assert bed.container("plain").status.phase == "Running"
    assert pull_secret(bed, "other") is not None
    assert apps.apps.get_by_name("shop", "demo") is None


async def test_a_forced_delete_lets_a_pull_secret_in_use_go(runtime: RuntimeBed) -> None:
    bed = runtime
    await bed.host("a")
    await bed.apply("PullSecret", "reg", {"data": {".dockerconfigjson": REG}})
    await bed.apply("Container", "web", {"image": IMAGES[0], **PULLING})
    await bed.phase("web", "Running")
    await bed.until(lambda: protected(pull_secret(bed)))
    await bed.store.delete(PullSecret, "reg", "demo")
    await bed.until(lambda: in_use(pull_secret(bed)) == "used by Container demo/web")
    obj = await bed.store.get(PullSecret, "reg", "demo")
    obj.metadata.finalizers = []  # what `zunctl delete --force` does after the delete
    await bed.store.update(obj)
    await bed.until(lambda: pull_secret(bed) is None)
    assert await gone(bed.store, PullSecret, "reg", "demo")
    assert bed.container("web").status.phase == "Running"


def _container(name: str, project: str, refs: list[str], owner: str = "") -> Container:
    owners = [OwnerReference(kind="Application", name="shop", uid=owner)] if owner else []
    meta = ObjectMeta(name=name, project=project, owner_references=owners)
    spec = {"image": IMAGES[0], "imagePullSecrets": [{"name": r} for r in refs]}
    return Container.model_validate({"metadata": meta.model_dump(), "spec": spec})


def test_pull_secret_users_are_of_its_project_and_an_apps_replicas_are_the_app() -> None:
    template = {"containers": [{"name": "w", "image": IMAGES[0], **PULLING}]}
    shop = Application.model_validate(
        {"metadata": {"name": "shop", "project": "demo", "uid": "u-shop"},
         "spec": {"cluster": "c1", "template": template}}
    )  # fmt: skip
    containers = [
        _container("web", "demo", ["other", "reg"]),
        _container("shop-1", "demo", ["reg"], owner="u-shop"),
        _container("old-1", "demo", ["reg"], owner="u-gone"),  # its Application names it no more
        _container("db", "demo", ["other"]),
        _container("web", "elsewhere", ["reg"]),
    ]
    users = pull_secret_users("reg", "demo", containers, [shop])
    assert used_by(users) == "used by Application demo/shop; Container demo/old-1, demo/web"
    assert pull_secret_users("reg", "nobody", containers, [shop]) == []
