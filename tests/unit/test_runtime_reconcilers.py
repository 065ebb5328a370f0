"""Container, Host, Network and Volume reconcilers on the in-memory store and FakeRuntime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from zun_controller.drivers.runtime.base import ContainerConfig, ContainerStatus
from zun_controller.drivers.runtime.fake import FakeRuntime, FakeRuntimeFactory
from zun_controller.engine.manager import Manager
from zun_controller.errors import NotFoundError, StaleRuntimeStateError, TransientError
from zun_controller.metrics import Metrics
from zun_controller.models.base import LABEL_CONFIG_HASH, LABEL_INSTANCE, LABEL_UID, Resource
from zun_controller.models.container import Container
from zun_controller.models.network import Network, Volume
from zun_controller.models.registry import parse
from zun_controller.reconcilers.container_config import config_hash, desired_config
from zun_controller.reconcilers.naming import default_network_labels, kind_selector
from zun_controller.reconcilers.runtime_watch import OrphanSweeper
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

IMAGES = ("zun-test/httpd:v1", "zun-test/httpd:v2")


class Bed:
    def __init__(self) -> None:
        self.store = RecordStore(MemoryKV())
        self.factory = FakeRuntimeFactory(images=IMAGES)
        self.manager = Manager(metrics=Metrics(), health_port=None)
        self.ctl = RuntimeControllers(
            self.manager,
            self.store,
            self.manager.metrics,
            self.factory,
            stop_grace=0,
            probe_every=0.2,
            pull={"backoff": 0.5},
        )

    def engine(self, host: str) -> FakeRuntime:
        return self.factory.runtimes[f"tcp://{host}:2375"]

    async def apply(self, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> Resource:
        metadata = {"name": name, **meta}
        if kind not in ("Host",):
            metadata.setdefault("project", "demo")
        return await self.store.create(
            parse(
                {
                    "apiVersion": "zun.openstack.org/v1alpha1",
                    "kind": kind,
                    "metadata": metadata,
                    "spec": spec,
                }
            )
        )

    async def host(self, name: str, **capacity: Any) -> None:
        spec: dict[str, Any] = {"endpoint": f"tcp://{name}:2375"}
        if capacity:
            spec["capacity"] = capacity
        await self.apply("Host", name, spec)
        await self.until(lambda: self.ready(name))

    def ready(self, host: str) -> bool:
        obj = self.ctl.hosts.get_by_name(host)
        return obj is not None and obj.status.is_true("Ready")

    def container(self, name: str) -> Container:
        obj = self.ctl.containers.get_by_name(name, "demo")
        assert obj is not None
        return obj

    async def until(self, check: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - the reconcilers have no hook to await
                await asyncio.sleep(0.01)

    async def phase(self, name: str, phase: str, within: float = 5.0) -> Container:
        def reached() -> bool:
            obj = self.ctl.containers.get_by_name(name, "demo")
            return obj is not None and obj.status.phase == phase

        await self.until(reached, within)
        return self.container(name)

    async def edit(self, name: str, **spec: Any) -> None:
        obj = await self.store.get(Container, name, "demo")
        obj.spec = type(obj.spec).model_validate({**obj.spec.model_dump(), **spec})
        await self.store.update(obj)


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    bed = Bed()
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    yield bed
    stop.set()
    await asyncio.wait_for(task, 10)


def engine_containers(engine: FakeRuntime, uid: str | None) -> list[Any]:
    return [c for c in engine._containers.values() if c.state().labels.get(LABEL_UID) == uid]


async def test_container_runs_with_published_port_and_labels(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0], "ports": [{"containerPort": 8080}]})
    obj = await bed.phase("web", "Running")
    assert obj.status.host == "a"
    assert obj.status.is_true("Ready")
    assert obj.status.ports and obj.status.ports[0].host_ip == "127.0.0.1"
    assert obj.metadata.finalizers == ["zun.openstack.org/runtime"]
    state = await bed.engine("a").inspect(obj.status.container_id or "")
    assert state is not None and state.status == ContainerStatus.RUNNING
    assert state.name == "zun_demo_web"
    assert "zun_demo" in state.ips


async def test_desired_state_drives_the_engine(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    cid = (await bed.phase("web", "Running")).status.container_id or ""
    for state, phase, engine_status in [
        ("Paused", "Paused", ContainerStatus.PAUSED),
        ("Stopped", "Stopped", ContainerStatus.EXITED),
        ("Running", "Running", ContainerStatus.RUNNING),
    ]:
        await bed.edit("web", state=state)
        await bed.phase("web", phase)
        inspected = await bed.engine("a").inspect(cid)
        assert inspected is not None and inspected.status == engine_status


async def test_spread_full_host_and_unschedulable(bed: Bed) -> None:
    await bed.host("a")
    await bed.host("b")
    await bed.host("small", memory="64Mi")
    for i in range(6):
        await bed.apply(
            "Container", f"c{i}", {"image": IMAGES[0], "resources": {"memory": "128Mi"}}
        )
    for i in range(6):
        await bed.phase(f"c{i}", "Running")
    hosts = [bed.container(f"c{i}").status.host or "" for i in range(6)]
    assert sorted(hosts) == ["a", "a", "a", "b", "b", "b"]
    await bed.apply("Container", "huge", {"image": IMAGES[0], "resources": {"memory": "100Gi"}})
    huge = await bed.phase("huge", "Pending")
    cond = huge.status.condition("Ready")
    assert cond is not None and cond.reason == "Unschedulable"
    assert "small: insufficient memory" in cond.message


async def test_missing_image_backs_off_without_a_crash_loop(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "ghost", {"image": "zun-test/nope:1"})
    obj = await bed.phase("ghost", "Error")
    cond = obj.status.condition("Ready")
    assert cond is not None and cond.reason in ("ErrImagePull", "ImagePullBackOff")
    assert "no such host" in cond.message  # the fake knows no registry docker.io
    await asyncio.sleep(0.5)
    retries = bed.manager.metrics.registry.get_sample_value(
        "controller_runtime_reconcile_errors_total", {"controller": "container"}
    )
    assert retries is not None and retries == 0  # waiting on a back-off, not failing
    assert await bed.engine("a").list_containers({}) == []
    bed.engine("a").add_image("zun-test/nope:1")
    await bed.phase("ghost", "Running", within=10)


async def test_image_change_recreates_memory_change_updates_in_place(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    first = (await bed.phase("web", "Running")).status.container_id
    await bed.edit(
        "web",
        resources=bed.container("web").spec.resources.model_copy(update={"memory": 64 * 2**20}),
    )
    await bed.until(lambda: bed.container("web").status.observed_generation == 2)
    state = await bed.engine("a").inspect(first or "")
    assert state is not None and state.memory == 64 * 2**20
    assert bed.container("web").status.container_id == first
    await bed.edit("web", image=IMAGES[1])
    await bed.until(lambda: bed.container("web").status.observed_generation == 3)
    second = bed.container("web").status
    assert second.container_id != first and second.phase == "Running"
    assert await bed.engine("a").inspect(first or "") is None


async def test_drift_is_undone(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    obj = await bed.phase("web", "Running")
    engine = bed.engine("a")
    await engine.stop(obj.status.container_id or "")
    await bed.until(lambda: bed.container("web").status.restart_count == 1)
    await bed.phase("web", "Running")
    await engine.remove(bed.container("web").status.container_id or "")
    await bed.until(lambda: len(engine_containers(engine, obj.metadata.uid)) == 1)
    await bed.phase("web", "Running")


async def test_delete_removes_the_container_first(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    obj = await bed.phase("web", "Running")
    await bed.store.delete(Container, "web", "demo")
    await bed.until(lambda: bed.ctl.containers.get_by_name("web", "demo") is None)
    assert engine_containers(bed.engine("a"), obj.metadata.uid) == []
    with pytest.raises(NotFoundError):
        await bed.store.get(Container, "web", "demo")


async def test_unreachable_host_turns_not_ready_and_its_containers_say_so(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    await bed.phase("web", "Running")
    bed.engine("a").unreachable = True
    await bed.until(lambda: not bed.ready("a"))

    def says_so() -> bool:
        cond = bed.container("web").status.condition("Ready")
        return cond is not None and cond.reason == "RuntimeUnavailable"

    await bed.until(says_so)


def reason(obj: Resource) -> str | None:
    cond = obj.status.condition("Ready")
    return cond.reason if cond is not None else None


async def test_a_network_record_exists_on_every_host_and_is_kept_while_used(bed: Bed) -> None:
    await bed.host("a")
    await bed.host("b")
    await bed.apply("Container", "api", {"image": IMAGES[0], "networks": ["backend"]})

    def waits_for_it() -> bool:
        obj = bed.ctl.containers.get_by_name("api", "demo")
        return obj is not None and reason(obj) == "NetworkNotFound"

    await bed.until(waits_for_it)
    assert bed.container("api").status.phase == "Creating"
    await bed.apply("Network", "backend", {})
    engine_name = "zun_demo_backend"

    def network_ready() -> bool:
        net = bed.ctl.networks.get_by_name("backend", "demo")
        return net is not None and net.status.phase == "Ready" and len(net.status.hosts) == 2

    await bed.until(network_ready)
    for name in ("a", "b"):
        found = await bed.engine(name).list_networks({})
        assert [n.name for n in found if n.name == engine_name] == [engine_name]
    api = await bed.phase("api", "Running", within=10)
    host = bed.engine(api.status.host or "")
    assert host._containers[api.status.container_id or ""].networks == [engine_name]

    await bed.store.delete(Network, "backend", "demo")

    def in_use() -> bool:
        net = bed.ctl.networks.get_by_name("backend", "demo")
        return net is not None and reason(net) == "InUse"

    await bed.until(in_use)
    assert engine_name in [n.name for n in await host.list_networks({})]
    await bed.store.delete(Container, "api", "demo")
    await bed.until(lambda: bed.ctl.networks.get_by_name("backend", "demo") is None, within=10)
    for name in ("a", "b"):
        assert engine_name not in [n.name for n in await bed.engine(name).list_networks({})]


async def test_an_unschedulable_container_is_placed_once_capacity_frees(bed: Bed) -> None:
    await bed.host("small", memory="256Mi")
    await bed.apply("Container", "first", {"image": IMAGES[0], "resources": {"memory": "200Mi"}})
    await bed.phase("first", "Running")
    await bed.apply("Container", "second", {"image": IMAGES[0], "resources": {"memory": "200Mi"}})
    second = await bed.phase("second", "Pending")
    assert reason(second) == "Unschedulable"
    await bed.store.delete(Container, "first", "demo")
    placed = await bed.phase("second", "Running", within=10)
    assert placed.status.host == "small"


async def test_a_container_paused_behind_zuns_back_is_unpaused(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    obj = await bed.phase("web", "Running")
    engine = bed.engine("a")
    await engine.pause(obj.status.container_id or "")

    container = engine._containers[obj.status.container_id or ""]
    await bed.until(lambda: container.status == ContainerStatus.RUNNING)
    assert bed.container("web").status.container_id == obj.status.container_id
    assert (await bed.phase("web", "Running")).status.phase == "Running"


async def test_a_create_repeated_after_a_crash_adopts_instead_of_duplicating() -> None:
    bed = Bed()
    # what a controller killed between its create and its status write leaves behind: the
    # record placed on host a, and the container made, but no status about it
    await bed.apply("Host", "a", {"endpoint": "tcp://a:2375"})
    created = await bed.apply(
        "Container", "web", {"image": IMAGES[0]}, finalizers=["zun.openstack.org/runtime"]
    )
    assert isinstance(created, Container)
    created.status.host = "a"
    obj = await bed.store.update_status(created)
    engine = bed.factory("a", "tcp://a:2375")
    await engine.ensure_network("zun_demo", default_network_labels("demo"))
    made = await engine.create(desired_config(obj))
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    try:
        await bed.phase("web", "Running")
        assert [c.id for c in engine_containers(engine, obj.metadata.uid)] == [made.id]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_orphans_go_and_foreign_containers_stay(bed: Bed) -> None:
    await bed.host("a")
    engine = bed.engine("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    obj = await bed.phase("web", "Running")
    orphan = desired_config(obj)
    orphan = ContainerConfig(
        **{
            **orphan.__dict__,
            "name": "zun-demo-gone",
            "labels": {**orphan.labels, LABEL_UID: "dead"},
        }
    )
    await engine.create(orphan)
    await engine.create(ContainerConfig(name="someone-else", image=IMAGES[0], labels={}))
    sweeper = OrphanSweeper(bed.ctl.containers, bed.ctl.hosts, bed.ctl.pool)
    removed = await sweeper.sweep(engine)
    assert removed == ["zun-demo-gone"]
    assert await engine.inspect("someone-else") is not None
    assert await engine.inspect("zun_demo_web") is not None


async def test_volume_is_kept_while_mounted(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Volume", "data", {})
    await bed.apply(
        "Container",
        "db",
        {"image": IMAGES[0], "volumes": [{"volume": "data", "mountPath": "/data"}]},
    )
    await bed.phase("db", "Running")
    await bed.store.delete(Volume, "data", "demo")

    def in_use() -> bool:
        vol = bed.ctl.volumes.get_by_name("data", "demo")
        cond = vol.status.condition("Ready") if vol else None
        return cond is not None and cond.reason == "InUse"

    await bed.until(in_use)
    assert await bed.engine("a").list_volumes({"zun.openstack.org/name": "data"})
    await bed.store.delete(Container, "db", "demo")
    await bed.until(lambda: bed.ctl.volumes.get_by_name("data", "demo") is None, within=15)
    assert not await bed.engine("a").list_volumes({"zun.openstack.org/name": "data"})


STALE_TASK_ERRORS = [
    "start {id}: task {id}: already exists",
    # the fourth long chaos run: containerd's task directory survived a dockerd restart
    "start {id}: failed to start shim: mkdir /run/zun-dockerd-chaos/containerd/daemon/"
    "io.containerd.runtime.v2.task/zun-chaos/{id}: file exists: unknown",
    # the fifth: runc's state of the container survived it
    "start {id}: id already in use",
]


@pytest.mark.parametrize(
    "message", STALE_TASK_ERRORS, ids=["task-exists", "shim-dir-exists", "runc-id-in-use"]
)
async def test_a_container_whose_start_hits_a_stale_task_is_recreated(
    bed: Bed, message: str
) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    first = (await bed.phase("web", "Running")).status.container_id or ""
    engine = bed.engine("a")
    await engine.stop(first)
    engine.fail_next("start", StaleRuntimeStateError(message.format(id=first)))
    await bed.until(lambda: bed.container("web").status.container_id not in (None, first))
    await bed.phase("web", "Running")
    assert await engine.inspect(first) is None


async def test_a_container_that_cannot_be_started_again_is_not_reported_running(bed: Bed) -> None:
    """Found by the long chaos run: after an engine restart the engine could not start
    containers again (its network had no free address), and their records still said Running."""
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    first = (await bed.phase("web", "Running")).status.container_id or ""
    engine = bed.engine("a")
    for _ in range(50):  # every start fails for as long as the test looks
        engine.fail_next("start", TransientError(f"start {first}: no available IPv4 addresses"))
    await engine.stop(first)

    def start_failed() -> bool:
        ready = bed.container("web").status.condition("Ready")
        return ready is not None and ready.reason == "RuntimeUnavailable"

    await bed.until(start_failed)
    status = bed.container("web").status
    assert status.phase != "Running" and status.container_id == first
    ready = status.condition("Ready")
    assert ready is not None and "no available IPv4 addresses" in ready.message


async def test_stopped_then_started_by_the_spec_runs_whatever_the_restart_policy(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0], "restartPolicy": "Never"})
    first = (await bed.phase("web", "Running")).status.container_id
    await bed.edit("web", state="Stopped")
    await bed.phase("web", "Stopped")
    await bed.edit("web", state="Running")
    assert (await bed.phase("web", "Running")).status.container_id == first


async def test_a_recreated_container_that_should_be_stopped_is_reported_stopped(bed: Bed) -> None:
    await bed.host("a")
    await bed.apply("Container", "web", {"image": IMAGES[0], "state": "Stopped"})
    obj = await bed.phase("web", "Stopped")
    state = await bed.engine("a").inspect(obj.status.container_id or "")
    assert state is not None and state.status == ContainerStatus.CREATED
    await bed.edit("web", image=IMAGES[1])
    await bed.until(lambda: bed.container("web").status.observed_generation == 2)
    assert bed.container("web").status.phase == "Stopped"


async def test_orphan_sweep_leaves_another_installations_containers_alone(bed: Bed) -> None:
    await bed.host("a")
    engine = bed.engine("a")
    await engine.ensure_network("zun-demo", {})
    base = {**kind_selector("Container"), LABEL_UID: "not-a-record-here"}
    theirs = ContainerConfig(
        name="zun-demo-theirs", image=IMAGES[0], labels={**base, LABEL_INSTANCE: "other"}
    )
    mine = ContainerConfig(
        name="zun-demo-mine", image=IMAGES[0], labels={**base, LABEL_INSTANCE: "this"}
    )
    await engine.create(theirs)
    await engine.create(mine)
    sweeper = OrphanSweeper(bed.ctl.containers, bed.ctl.hosts, bed.ctl.pool, instance="this")
    assert await sweeper.sweep(engine) == ["zun-demo-mine"]
    assert await engine.inspect("zun-demo-theirs") is not None


async def starts(engine: FakeRuntime, cid: str) -> int:
    """How often the container was started: its image prints one line at each start."""
    return b"".join([chunk async for chunk in engine.logs(cid)]).count(b"up\n")


async def running_with_a_start_line(bed: Bed) -> tuple[FakeRuntime, str]:
    await bed.host("a")
    engine = bed.engine("a")
    engine.add_image(IMAGES[0], output=b"up\n")
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    cid = (await bed.phase("web", "Running")).status.container_id or ""
    assert await starts(engine, cid) == 1
    return engine, cid


async def settled(bed: Bed, generation: int) -> Container:
    await bed.until(lambda: bed.container("web").status.observed_generation == generation)
    return bed.container("web")


async def test_restarted_at_restarts_in_place_once(bed: Bed) -> None:
    engine, cid = await running_with_a_start_line(bed)
    asked = datetime.now(UTC)
    await bed.edit("web", restarted_at=asked)
    obj = await settled(bed, 2)
    assert obj.status.restarted_at == asked and obj.status.phase == "Running"
    assert obj.status.container_id == cid and await starts(engine, cid) == 2
    # later passes (a resize, an older restartedAt put back by another writer) restart nothing
    await bed.edit("web", resources={"memory": 64 * 2**20})
    await settled(bed, 3)
    await bed.edit("web", restarted_at=asked - timedelta(hours=1))
    obj = await settled(bed, 4)
    assert obj.status.restarted_at == asked and await starts(engine, cid) == 2
    # one asked for while the spec says Stopped is done by the stop itself
    later = asked + timedelta(seconds=1)
    await bed.edit("web", restarted_at=later, state="Stopped")
    obj = await settled(bed, 5)
    assert (obj.status.phase, obj.status.restarted_at) == ("Stopped", later)
    assert await starts(engine, cid) == 2


async def test_a_restart_not_recorded_is_made_once_more_then_never_again(bed: Bed) -> None:
    """What a controller that dies between the restart and its status write leaves: the engine
    restarted the container, status does not say so. The next pass restarts it again, once."""
    engine, cid = await running_with_a_start_line(bed)
    engine.fail_next("inspect", TransientError("engine went away after the restart"))
    asked = datetime.now(UTC)
    await bed.edit("web", restarted_at=asked)
    obj = await settled(bed, 2)
    assert obj.status.restarted_at == asked and await starts(engine, cid) == 3
    await bed.edit("web", resources={"memory": 64 * 2**20})
    await settled(bed, 3)
    assert await starts(engine, cid) == 3


async def test_rebuilt_at_recreates_once_from_the_same_spec(bed: Bed) -> None:
    engine, first = await running_with_a_start_line(bed)
    unset = desired_config(bed.container("web"))
    assert unset.labels[LABEL_CONFIG_HASH] == config_hash(bed.container("web"))
    await bed.edit("web", rebuilt_at=datetime.now(UTC))
    obj = await settled(bed, 2)
    second = obj.status.container_id or ""
    assert second != first and obj.status.phase == "Running"
    assert await engine.inspect(first) is None
    assert [c.id for c in engine_containers(engine, obj.metadata.uid)] == [second]
    await bed.edit("web", resources={"memory": 64 * 2**20})
    obj = await settled(bed, 3)
    assert obj.status.container_id == second and await starts(engine, second) == 1
