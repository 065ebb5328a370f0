"""Informer, controller and manager on the in-memory store: the engine's semantics."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable

import pytest

from zun_controller.engine.controller import Controller
from zun_controller.engine.informer import Cached, Informer
from zun_controller.engine.manager import Manager
from zun_controller.engine.reconciler import Result, TerminalError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.store.kv import Txn
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore


def must(obj: Container | None) -> Container:
    assert obj is not None
    return obj


def container(name: str, project: str = "demo") -> Container:
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Container",
            "metadata": {"name": name, "project": project},
            "spec": {"image": "busybox"},
        }
    )
    assert isinstance(obj, Container)
    return obj


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds; the engine has no hook to await, so poll briefly."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class Stamp:
    """Writes status.observedGeneration; fails on demand, to exercise retries."""

    def __init__(self, informer: Informer[Container], store: RecordStore) -> None:
        self.informer = informer
        self.store = store
        self.calls: dict[str, int] = {}
        self.fail: dict[str, type[Exception]] = {}

    async def reconcile(self, key: str) -> Result:
        self.calls[key] = self.calls.get(key, 0) + 1
        if key in self.fail:
            raise self.fail[key]("asked to fail")
        obj = self.informer.get(key)
        if obj is None or obj.status.observed_generation == obj.metadata.generation:
            return Result()
        obj.status.observed_generation = obj.metadata.generation
        obj.status.phase = "Running"
        await self.store.update_status(obj)
        return Result()


@pytest.fixture
def store() -> RecordStore:
    return RecordStore(MemoryKV())


@pytest.fixture
async def running(store: RecordStore) -> AsyncIterator[tuple[Stamp, Controller, Metrics]]:
    metrics = Metrics()
    informer = Informer(store, Container, metrics=metrics)
    stamp = Stamp(informer, store)
    controller = Controller("container", stamp, informer, store=store, metrics=metrics, workers=3)
    manager = Manager(metrics=metrics, health_port=None)
    manager.add_controller(controller)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    yield stamp, controller, metrics
    stop.set()
    await asyncio.wait_for(task, 5)


def sample(metrics: Metrics, metric: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(metric, labels)
    return value or 0.0


async def test_every_record_converges_and_own_status_writes_do_not_loop(
    store: RecordStore, running: tuple[Stamp, Controller, Metrics]
) -> None:
    stamp, _, _ = running
    for i in range(50):
        await store.create(container(f"c-{i}"))

    async def converged() -> bool:
        items = (await store.list(Container)).items
        return len(items) == 50 and all(o.status.observed_generation == 1 for o in items)

    for _ in range(500):
        if await converged():
            break
        await asyncio.sleep(0.01)
    assert await converged()
    await asyncio.sleep(0.05)
    assert max(stamp.calls.values()) == 1


async def test_spec_change_reconciles_again(
    store: RecordStore, running: tuple[Stamp, Controller, Metrics]
) -> None:
    stamp, _, _ = running
    obj = await store.create(container("c"))
    await eventually(lambda: stamp.calls.get("containers/demo/c") == 1)
    obj = await store.get(Container, "c", "demo")
    obj.spec.image = "httpd"
    await store.update(obj)
    await eventually(lambda: stamp.calls.get("containers/demo/c") == 2)
    await eventually(
        lambda: must(stamp.informer.get("containers/demo/c")).status.observed_generation == 2
    )


async def test_failure_retries_with_backoff_then_succeeds(
    store: RecordStore, running: tuple[Stamp, Controller, Metrics]
) -> None:
    stamp, _, metrics = running
    stamp.fail["containers/demo/c"] = RuntimeError
    await store.create(container("c"))
    await eventually(lambda: stamp.calls.get("containers/demo/c", 0) >= 3)
    del stamp.fail["containers/demo/c"]
    await eventually(
        lambda: must(stamp.informer.get("containers/demo/c")).status.phase == "Running"
    )
    assert sample(metrics, "controller_runtime_reconcile_errors_total", controller="container") >= 3
    assert sample(metrics, "workqueue_retries_total", name="container") >= 3


async def test_terminal_error_is_not_retried(
    store: RecordStore, running: tuple[Stamp, Controller, Metrics]
) -> None:
    stamp, _, metrics = running
    stamp.fail["containers/demo/c"] = TerminalError
    await store.create(container("c"))
    await eventually(lambda: stamp.calls.get("containers/demo/c", 0) == 1)
    await asyncio.sleep(0.1)
    assert stamp.calls["containers/demo/c"] == 1
    assert (
        sample(
            metrics, "controller_runtime_terminal_reconcile_errors_total", controller="container"
        )
        == 1
    )


async def test_invalid_record_written_to_etcd_gets_condition_not_action(
    store: RecordStore, running: tuple[Stamp, Controller, Metrics]
) -> None:
    stamp, _, metrics = running
    bad = container("bad").to_wire()
    bad["spec"]["ports"] = [{"containerPort": 99999}]
    key = "/zun/registry/containers/demo/bad"
    await store.kv.commit(Txn(puts=[(key, json.dumps(bad).encode())]))
    await store.kv.commit(Txn(puts=[("/zun/registry/containers/demo/junk", b"{not json")]))
    await store.create(container("good"))

    def marked() -> bool:
        kv = stamp.informer.raw("containers/demo/bad")
        return kv is not None and b"Invalid" in kv.value

    await eventually(marked)
    raw = stamp.informer.raw("containers/demo/bad")
    assert raw is not None
    status = json.loads(raw.value)["status"]
    assert status["conditions"][0]["type"] == "Invalid"
    assert "spec.ports[0].containerPort" in status["conditions"][0]["message"]
    await eventually(
        lambda: must(stamp.informer.get("containers/demo/good")).status.phase == "Running"
    )
    assert sample(metrics, "zun_invalid_records_total", kind="Container") == 1
    assert sample(metrics, "zun_undecodable_values_total", kind="Container") == 1


async def test_informer_relists_after_compaction_and_sees_deletes() -> None:
    kv = MemoryKV()
    store = RecordStore(kv)
    metrics = Metrics()
    informer = Informer(store, Container, metrics=metrics)
    seen: list[tuple[str, bool]] = []

    def handler(key: str, old: Cached | None, new: Cached | None) -> None:
        seen.append((key, new is not None))

    informer.add_handler(handler)
    await store.create(container("a"))
    await store.create(container("b"))
    task = asyncio.create_task(informer.run())
    await informer.synced.wait()
    assert sorted(informer.list_keys()) == ["containers/demo/a", "containers/demo/b"]
    kv.drop_watches()
    await store.delete(Container, "a", "demo")
    await store.create(container("c"))
    await kv.compact(await kv.revision())
    await eventually(
        lambda: sorted(informer.list_keys()) == ["containers/demo/b", "containers/demo/c"]
    )
    assert ("containers/demo/a", False) in seen
    assert sample(metrics, "zun_informer_relists_total", kind="Container", reason="compacted") >= 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def run_one(
    store: RecordStore, reconciler: object, informer: Informer[Container]
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    metrics = Metrics()
    controller = Controller("container", reconciler, informer, store=store, metrics=metrics)  # type: ignore[arg-type]
    manager = Manager(metrics=metrics, health_port=None)
    manager.add_controller(controller)
    stop = asyncio.Event()
    return stop, asyncio.create_task(manager.run(stop))


async def test_requeue_after_comes_back_without_a_change(store: RecordStore) -> None:
    informer = Informer(store, Container, metrics=Metrics())
    calls: list[float] = []

    class Poll:
        async def reconcile(self, key: str) -> Result:
            calls.append(asyncio.get_running_loop().time())
            return Result(requeue_after=0.05)

    stop, task = await run_one(store, Poll(), informer)
    await store.create(container("c"))
    await eventually(lambda: len(calls) >= 4)
    stop.set()
    await asyncio.wait_for(task, 5)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 0.04, gaps


async def test_periodic_resync_passes_every_key_again(store: RecordStore) -> None:
    for name in ("a", "b"):
        await store.create(container(name))
    informer = Informer(store, Container, metrics=Metrics(), resync_period=0.1)
    stamp = Stamp(informer, store)
    stop, task = await run_one(store, stamp, informer)
    await eventually(lambda: all(stamp.calls.get(f"containers/demo/{n}", 0) >= 3 for n in "ab"))
    stop.set()
    await asyncio.wait_for(task, 5)
    stored = {o.name: o.metadata.resource_version for o in (await store.list(Container)).items}
    assert stored == {
        n: must(informer.get(f"containers/demo/{n}")).metadata.resource_version for n in "ab"
    }


async def test_probes_say_ready_only_once_the_informers_synced(store: RecordStore) -> None:
    metrics = Metrics()
    manager = Manager(metrics=metrics, health_port=0)
    informer = Informer(store, Container, metrics=metrics)
    manager.add_informer(informer)
    assert manager.health is not None
    await manager.health.start()

    async def get(path: str) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", manager.health.port)  # type: ignore[union-attr]
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = await reader.read()
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body

    try:
        assert await get("/healthz") == (200, b"ok")
        assert (await get("/readyz"))[0] == 503
        informer.synced.set()
        assert await get("/readyz") == (200, b"ok")
        code, body = await get("/metrics")
        assert code == 200 and b"workqueue_depth" in body
        assert (await get("/nothing"))[0] == 404
    finally:
        await manager.health.stop()
