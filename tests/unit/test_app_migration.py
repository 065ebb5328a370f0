"""An Application moved between Clusters (spec.cluster changed), on the in-memory store with a
fake engine per Cluster: the new side comes up first, the old one goes after the cut over, a
failed new side is removed while the old one serves, a delete at any point removes both
sides, and a controller restarted mid-move finishes it from what status recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from test_applications import V1, V2, Bed, FakeOrchestrator, _cond, _template

from zun_controller.drivers.orchestrators.base import AppObservation, ClusterInfo
from zun_controller.engine.manager import Manager
from zun_controller.errors import NotFoundError, TransientError
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application, AppTemplate, Cluster
from zun_controller.reconcilers import app_migration, orchestrators
from zun_controller.reconcilers.app_setup import ApplicationControllers
from zun_controller.store.records import RecordStore

KEY = "applications/demo/web"


@dataclass
class Engine(FakeOrchestrator):
    """A fake engine of one Cluster: `holding` keeps new replicas not ready; `down` makes
    every call fail as an unreachable engine does; each apply checks what etcd says first."""

    endpoint: str = "127.0.0.1:30080"
    holding: bool = False
    down: bool = False
    store: RecordStore | None = None
    #: applies made while the stored record did not name this Cluster as a side
    unannounced: list[str] = field(default_factory=list)
    cluster: str = ""

    def _reach(self) -> None:
        if self.down:
            raise TransientError(f"engine of {self.cluster} does not answer")

    async def info(self) -> ClusterInfo:
        self._reach()
        return await super().info()

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        self._reach()
        assert self.store is not None
        stored = await self.store.get(Application, app.name, app.project)
        if self.cluster not in app_migration.sides(stored):
            self.unannounced.append(revision)
        return await super().apply(app, template, revision)

    async def observe(self, app: Application, revision: str) -> AppObservation:
        self._reach()
        obs = await super().observe(app, revision)
        if not obs.exists:
            return obs
        obs = replace(obs, endpoints=(self.endpoint,))
        if self.holding:
            return replace(obs, ready=0, available=0, progressing=True)
        return obs

    async def delete(self, app: Application) -> bool:
        self._reach()
        return await super().delete(app)


class MoveBed(Bed):
    """Bed with Clusters `c1` (docker) and `s1` (swarm), each its own fake engine."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.engines = {
            name: Engine(endpoint=f"127.0.0.1:{port}", cluster=name)
            for name, port in (("c1", 30001), ("s1", 30002), ("c2", 30003))
        }
        monkeypatch.setattr(
            orchestrators, "SwarmOrchestrator", lambda name, *a, **k: self.engines[name]
        )
        super().__init__()
        self.ctl.pool.docker = lambda cluster: self.engines[cluster.name]
        for engine in self.engines.values():
            engine.store = self.store

    def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.manager.run(self.stop))

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def restart(self) -> None:
        """A new controller (manager, caches, orchestrator pool) on the same store and engines."""
        await self.halt()
        self.manager = Manager(metrics=Metrics(), health_port=None)
        self.ctl = ApplicationControllers(
            self.manager, self.store, self.manager.metrics, docker=lambda c: self.engines[c.name]
        )
        self.start()

    def on(self, name: str) -> bool:
        return KEY in self.engines[name].apps

    async def move(self, cluster: str) -> None:
        await self.edit(cluster=cluster)

    def migration(self) -> Any:
        return self.get().status.migration


@pytest.fixture
async def move(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MoveBed]:
    monkeypatch.setattr(app_migration, "DRAIN", 0.2)
    monkeypatch.setattr(app_migration, "RETRY_BASE", 0.3)
    b = MoveBed(monkeypatch)
    b.start()
    await b.apply("Cluster", "c1", {"type": "docker"})
    await b.apply("Cluster", "c2", {"type": "docker"})
    await b.apply("Cluster", "s1", {"type": "swarm", "endpoint": "tcp://fake:2375"})
    yield b
    await b.halt()
    for engine in b.engines.values():
        assert engine.unannounced == []


async def _running(move: MoveBed, **spec: Any) -> None:
    await move.app(**spec)
    await move.until(lambda: move.get().status.phase == "Ready")
    assert app_migration.serving(move.get()) == "c1"
    assert _settled_on(move.get()) == "c1"
    assert move.get().status.cluster is None  # settled: left out of the record


def _settled_on(app: Application) -> str:
    cond = app.status.condition("Migrating")
    assert cond is not None and (cond.status.value, cond.reason) == ("False", "Settled")
    assert app.status.migration is None and app.status.cluster is None
    assert "cluster" not in app.to_wire()["status"] and "migration" not in app.to_wire()["status"]
    return cond.message.removeprefix("on Cluster ")


async def test_the_new_side_is_ready_before_the_old_side_goes(move: MoveBed) -> None:
    await _running(move)
    move.engines["s1"].holding = True
    await move.move("s1")
    await move.until(lambda: move.on("s1") and move.migration() is not None)
    await move.until(lambda: _cond(move.get(), "Migrating") == ("True", "Migrating"))
    status = move.get().status
    assert status.cluster == "c1" and move.on("c1")
    assert status.endpoints == ["127.0.0.1:30001"]  # the old side serves
    assert status.migration is not None
    assert (status.migration.from_cluster, status.migration.to_cluster) == ("c1", "s1")
    assert status.migration.endpoints == ["127.0.0.1:30002"]
    cond = status.condition("Migrating")
    assert cond is not None and cond.message == "from Cluster c1 to s1: 0/3 ready on s1"
    await asyncio.sleep(0.3)
    assert move.on("c1")  # still serving while the new side is not ready

    move.engines["s1"].holding = False
    await move.until(lambda: app_migration.serving(move.get()) == "s1")
    assert move.get().status.endpoints == ["127.0.0.1:30002"]
    await move.until(lambda: move.migration() is None)
    assert not move.on("c1") and move.on("s1")
    assert _settled_on(move.get()) == "s1"
    assert move.get().status.phase == "Ready"
    assert move.engines["s1"].apps[KEY].revision == move.get().status.current_revision
    [event] = [e.spec for e in await move.events() if e.spec.reason == "Migrated"]
    assert (event.type, event.message) == ("Normal", "moved from Cluster c1 to s1")


async def test_and_back_again(move: MoveBed) -> None:
    await _running(move)
    await move.move("s1")
    await move.until(lambda: _there(move, "s1"))
    await move.move("c1")
    await move.until(lambda: _there(move, "c1"))
    assert move.on("c1") and not move.on("s1")


async def test_a_failing_new_side_is_removed_and_the_old_one_keeps_serving(
    move: MoveBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_migration, "RETRY_BASE", 1.0)
    await _running(move)
    move.engines["s1"].failing.add(V1)  # e.g. the image cannot be pulled there
    await move.move("s1")
    await move.until(lambda: _cond(move.get(), "Migrating") == ("False", "MigrationFailed"))
    await move.until(lambda: not move.on("s1"))
    status = move.get().status
    assert status.cluster == "c1" and move.on("c1") and status.phase == "Ready"
    assert status.endpoints == ["127.0.0.1:30001"]
    mig = status.migration
    assert mig is not None and mig.failures == 1 and not mig.to_applied
    cond = status.condition("Migrating")
    assert cond is not None
    assert cond.message.startswith(
        "from Cluster c1 to s1 failed (Unhealthy: new replicas fail their healthcheck); "
        "c1 keeps serving; attempt 2 at "
    )
    assert _cond(move.get(), "Available") == ("True", "MinimumReplicasAvailable")
    [event] = [e.spec for e in await move.events() if e.spec.reason == "MigrationFailed"]
    assert event.type == "Warning" and event.message == (
        "from Cluster c1 to s1 failed (Unhealthy: new replicas fail their healthcheck); "
        "c1 keeps serving"
    )
    # tried again after the backoff: it fails again, and waits longer
    await move.until(lambda: (move.migration() or mig).failures == 2, within=10)
    move.engines["s1"].failing.clear()
    await move.edit(replicas=2)  # a spec change tries again at once
    await move.until(lambda: _there(move, "s1"))
    assert not move.on("c1") and move.engines["s1"].apps[KEY].replicas == 2


async def test_a_new_side_that_never_answers_fails_at_the_deadline(move: MoveBed) -> None:
    await _running(move, updateStrategy={"progressDeadlineSeconds": 1})
    await _take_down(move, "s1")
    await move.move("s1")
    await move.until(lambda: _cond(move.get(), "Migrating") == ("False", "MigrationFailed"))
    cond = move.get().status.condition("Migrating")
    assert cond is not None and "ClusterNotReady: Cluster s1 is not ready" in cond.message
    assert move.get().status.cluster == "c1" and move.on("c1")
    mig = move.migration()
    assert mig is not None and not mig.to_applied  # nothing was ever sent there
    await move.move("c1")  # given up: nothing to wait for on s1
    await move.until(lambda: _there(move, "c1"))
    await move.store.delete(Application, "web", "demo")
    await move.until(lambda: move.ctl.apps.get_by_name("web", "demo") is None)
    assert not move.on("c1")


async def test_a_delete_waits_for_a_new_side_whose_engine_went_away(move: MoveBed) -> None:
    await _running(move, updateStrategy={"progressDeadlineSeconds": 1})
    move.engines["s1"].holding = True
    await move.move("s1")
    await move.until(lambda: move.on("s1"))
    await _take_down(move, "s1")
    await move.until(lambda: _cond(move.get(), "Migrating") == ("False", "MigrationFailed"))
    mig = move.migration()
    assert mig is not None and mig.to_applied and move.on("s1")  # cannot be removed yet
    await move.store.delete(Application, "web", "demo")
    await move.until(lambda: move.get().status.phase == "Terminating")
    assert not move.on("c1")
    move.engines["s1"].down = False
    move.ctl.cluster.queue.add("clusters/s1")
    await move.until(lambda: move.ctl.apps.get_by_name("web", "demo") is None, within=30)
    assert not move.on("s1")


async def _take_down(move: MoveBed, name: str) -> None:
    move.engines[name].down = True
    move.ctl.cluster.queue.add(f"clusters/{name}")  # as its next probe would
    await move.until(lambda: _is_not_ready(name, move))


def _there(move: MoveBed, name: str) -> bool:
    return move.migration() is None and app_migration.serving(move.get()) == name


def _is_not_ready(name: str, move: MoveBed) -> bool:
    obj = move.ctl.clusters.get_by_name(name)
    return obj is not None and not obj.status.is_true("Ready")


async def test_a_delete_mid_move_removes_both_sides(move: MoveBed) -> None:
    await _running(move)
    move.engines["s1"].holding = True
    await move.move("s1")
    await move.until(lambda: move.on("s1"))
    await move.store.delete(Application, "web", "demo")
    await move.until(lambda: move.ctl.apps.get_by_name("web", "demo") is None)
    assert not move.on("c1") and not move.on("s1")
    with pytest.raises(NotFoundError):
        await move.store.get(Application, "web", "demo")


async def test_a_move_given_up_removes_its_new_side(move: MoveBed) -> None:
    await _running(move)
    move.engines["s1"].holding = True
    await move.move("s1")
    await move.until(lambda: move.on("s1"))
    await move.move("c1")  # back before it finished
    await move.until(lambda: move.migration() is None and not move.on("s1"))
    assert move.on("c1") and _settled_on(move.get()) == "c1"
    assert _cond(move.get(), "Migrating") == ("False", "Settled")


async def test_a_restarted_controller_finishes_the_move(move: MoveBed) -> None:
    await _running(move)
    move.engines["s1"].holding = True
    await move.move("s1")
    await move.until(lambda: move.on("s1") and move.migration() is not None)
    await move.halt()
    stored = await move.store.get(Application, "web", "demo")
    assert stored.status.migration is not None
    assert (stored.status.migration.from_cluster, stored.status.cluster) == ("c1", "c1")
    move.engines["s1"].holding = False
    await move.restart()
    await move.until(lambda: _there(move, "s1"))
    assert not move.on("c1") and move.on("s1")


async def test_a_cluster_moved_from_is_in_use_until_its_side_is_gone(move: MoveBed) -> None:
    await _running(move)
    move.engines["s1"].holding = True
    await move.move("s1")
    await move.until(lambda: move.on("s1"))
    await move.store.delete(Cluster, "c1")
    await move.until(lambda: _cond_of_cluster(move, "c1") == ("True", "InUse"))
    move.engines["s1"].holding = False
    await move.until(lambda: move.migration() is None)
    assert not move.on("c1")
    await move.until(lambda: move.ctl.clusters.get_by_name("c1") is None, within=10)


def _cond_of_cluster(move: MoveBed, name: str) -> tuple[str, str] | None:
    obj = move.ctl.clusters.get_by_name(name)
    cond = obj.status.condition("InUse") if obj else None
    return None if cond is None else (cond.status.value, cond.reason)


async def test_two_docker_clusters_hold_the_same_records_so_no_move_between_them(
    move: MoveBed,
) -> None:
    await _running(move)
    await move.move("c2")
    await move.until(lambda: _cond(move.get(), "Migrating") == ("False", "MigrationFailed"))
    cond = move.get().status.condition("Migrating")
    assert (
        cond is not None
        and "Unsupported: no move between these Clusters: docker Clusters" in cond.message
    )
    assert move.on("c1") and not move.on("c2")


async def test_the_template_follows_onto_the_new_side(move: MoveBed) -> None:
    await _running(move)
    await move.edit(cluster="s1", template=_template(V2))
    await move.until(lambda: _there(move, "s1"))
    assert move.engines["s1"].apps[KEY].image == V2


async def test_a_move_away_from_an_engine_that_does_not_answer(move: MoveBed) -> None:
    await _running(move)
    move.engines["c1"].down = True
    move.ctl.cluster.queue.add("clusters/c1")
    await move.until(lambda: _is_not_ready("c1", move))
    await move.move("s1")
    await move.until(lambda: move.get().status.cluster == "s1")
    await move.until(lambda: _cond(move.get(), "Migrating") == ("True", "RemovingOldSide"))
    await asyncio.sleep(0.5)
    assert move.on("s1") and move.on("c1")  # c1 cannot be emptied while it does not answer
    assert move.get().status.endpoints == ["127.0.0.1:30002"]
    move.engines["c1"].down = False
    await move.until(lambda: move.migration() is None)
    assert not move.on("c1")
    assert _cond(move.get(), "Migrating") == ("False", "Settled")


def _cluster(name: str, spec: dict[str, Any]) -> Cluster:
    return Cluster.model_validate({"metadata": {"name": name}, "spec": spec})


SW_A = {"type": "swarm", "endpoint": "tcp://a:2375"}
SW_B = {"type": "swarm", "endpoint": "tcp://b:2375"}
KUBE_K = {"type": "kubernetes", "kubeconfigSecret": {"name": "k"}}
KUBE_J = {"type": "kubernetes", "kubeconfigSecret": {"name": "j"}}
LOCAL_SWARM = {"type": "swarm", "endpoint": "unix:///var/run/docker.sock"}


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        ({"type": "docker"}, {"type": "docker", "hostSelector": {"rack": "b"}}, True),
        (SW_A, dict(SW_A), True),
        (SW_A, SW_B, False),
        (KUBE_K, dict(KUBE_K), True),
        (KUBE_K, KUBE_J, False),
        ({"type": "docker"}, LOCAL_SWARM, False),
    ],
)
def test_clusters_that_would_hold_the_app_as_the_same_objects(
    a: dict[str, Any], b: dict[str, Any], shared: bool
) -> None:
    why = app_migration.shared_objects(_cluster("a", a), _cluster("b", b))
    assert (why is not None) == shared, why
