"""Metrics, Events and drift on the in-memory store and FakeRuntime: what a scrape shows and
what the store holds after the reconcilers act."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import pytest

from zun_controller.cli.logs import JsonFormatter
from zun_controller.drivers.runtime.base import ExecResult
from zun_controller.drivers.runtime.fake import FakeRuntime, FakeRuntimeFactory
from zun_controller.engine.convergence import ConvergenceTracker
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.informer import Cached
from zun_controller.engine.logcontext import ReconcileContextFilter
from zun_controller.engine.manager import Manager
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_setup import ApplicationControllers
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

IMAGE = "zun-test/httpd:v1"


class Bed:
    def __init__(self) -> None:
        self.kv = MemoryKV()
        self.store = RecordStore(self.kv)
        self.factory = FakeRuntimeFactory(images=(IMAGE,))
        self.metrics = Metrics(tenant_names=True)
        self.manager = Manager(metrics=self.metrics, health_port=None)
        self.ctl = RuntimeControllers(
            self.manager, self.store, self.metrics, self.factory, stop_grace=0, stats_every=0.05
        )

    def engine(self) -> FakeRuntime:
        return self.factory.runtimes["tcp://a:2375"]

    async def apply(self, kind: str, name: str, spec: dict[str, Any], project: str | None) -> None:
        meta = {"name": name, **({"project": project} if project else {})}
        data = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "metadata": meta}
        await self.store.create(parse({**data, "spec": spec}))

    def container(self, name: str) -> Container | None:
        return self.ctl.containers.get_by_name(name, "demo")

    def sample(self, name: str, labels: dict[str, str]) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    async def until(self, check: Callable[[], object], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not check():  # noqa: ASYNC110 - the reconcilers have no hook to await
                await asyncio.sleep(0.01)

    async def running(self, name: str) -> Container:
        await self.until(lambda: (c := self.container(name)) and c.status.is_true("Ready"))
        obj = self.container(name)
        assert obj is not None
        return obj

    async def events(self) -> list[Event]:
        await self.ctl.recorder.flush()
        return list((await self.store.list(Event, project=None)).items)


def _equals(
    sample: Callable[[str, dict[str, str]], float | None],
    name: str,
    labels: dict[str, str],
    want: float,
) -> bool:
    return sample(name, labels) == want


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    bed = Bed()
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    await bed.apply("Host", "a", {"endpoint": "tcp://a:2375"}, None)
    yield bed
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_records_driver_calls_convergence_and_stats_are_measured(bed: Bed) -> None:
    await bed.apply("Container", "web", {"image": IMAGE}, "demo")
    obj = await bed.running("web")
    running = {"kind": "Container", "phase": "Running", "project": "demo"}
    assert bed.sample("zun_records", running) == 1
    assert bed.sample("zun_records", {"kind": "Host", "phase": "Ready", "project": ""}) == 1
    ok = {"engine": "a", "operation": "create", "result": "success"}
    assert bed.sample("zun_driver_calls_total", ok) == 1
    assert bed.sample("zun_driver_calls_total", {**ok, "result": "error"}) == 0
    assert bed.sample("zun_convergence_seconds_count", {"kind": "Container"}) == 1
    series = {"project": "demo", "name": obj.name}
    await bed.until(lambda: bed.sample("zun_container_memory_bytes", series))
    assert bed.sample("zun_container_cpu_ratio", series) == 0.005
    assert bed.sample("zun_container_memory_bytes", series) == 1024 * 1024
    await bed.store.delete(Container, "web", "demo")
    await bed.until(lambda: bed.sample("zun_container_memory_bytes", series) is None)
    await bed.until(lambda: bed.sample("zun_records", running) is None)


async def test_drift_is_counted_and_events_aggregate(bed: Bed) -> None:
    await bed.apply("Container", "web", {"image": IMAGE}, "demo")
    obj = await bed.running("web")
    drift = {"kind": "Container", "action": "restarted"}
    assert bed.sample("zun_drift_corrections_total", drift) == 0
    assert bed.sample("zun_drift_corrections_total", {**drift, "action": "recreated"}) == 0
    for n in (1.0, 2.0):
        await bed.engine().stop(obj.status.container_id or "")
        await bed.until(partial(_equals, bed.sample, "zun_drift_corrections_total", drift, n))
    await bed.running("web")
    events = {e.spec.reason: e.spec for e in await bed.events()}
    assert {"Scheduled", "Created", "Started", "DriftCorrected"} <= set(events)
    assert events["DriftCorrected"].count == 2
    assert events["DriftCorrected"].type == "Warning"
    assert events["Started"].involved_object.uid == obj.metadata.uid
    assert events["DriftCorrected"].last_timestamp >= events["DriftCorrected"].first_timestamp


async def test_deleting_a_running_container_records_killed(bed: Bed) -> None:
    await bed.apply("Container", "web", {"image": IMAGE}, "demo")
    obj = await bed.running("web")
    found = await bed.engine().inspect(obj.status.container_id or "")
    assert found is not None
    await bed.store.delete(Container, "web", "demo")
    await bed.until(lambda: bed.container("web") is None)
    assert await bed.engine().list_containers({}) == []
    [killed] = [e.spec for e in await bed.events() if e.spec.reason == "Killed"]
    assert (killed.type, killed.involved_object.uid) == ("Normal", obj.metadata.uid)
    assert killed.message == f"container {found.name} stopped and removed"


async def test_a_docker_app_balancer_edited_by_hand_is_application_drift() -> None:
    bed = Bed()
    apps = ApplicationControllers(
        bed.manager, bed.store, bed.metrics, runtime=bed.ctl, lb_image=IMAGE
    )
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    try:
        await bed.apply("Host", "a", {"endpoint": "tcp://a:2375"}, None)
        await bed.until(lambda: "tcp://a:2375" in bed.factory.runtimes)
        bed.engine().exec_handler = lambda state, command: ExecResult(0, b"")  # balancer reloads
        await bed.apply("Cluster", "local", {"type": "docker"}, None)
        spec = {
            "cluster": "local",
            "template": {"containers": [{"name": "w", "image": IMAGE}]},
            "service": {"ports": [{"port": 8080, "targetPort": 80}]},
        }
        await bed.apply("Application", "shop", spec, "demo")

        def settled() -> bool:
            app = apps.apps.get_by_name("shop", "demo")
            lb = bed.container("shop-lb")
            return bool(app and app.status.phase == "Ready" and lb and lb.status.is_true("Ready"))

        await bed.until(settled, within=15)  # the first reconcile waits for the Cluster
        drift = {"kind": "Application", "action": "reapplied"}
        assert bed.sample("zun_drift_corrections_total", drift) == 0  # the rollout is no drift
        lb = await bed.store.get(Container, "shop-lb", "demo")
        lb.spec.labels["edited"] = "by-hand"
        await bed.store.update(lb)
        await bed.until(partial(_equals, bed.sample, "zun_drift_corrections_total", drift, 1))
        assert "edited" not in (await bed.store.get(Container, "shop-lb", "demo")).spec.labels
        [event] = [e.spec for e in await bed.events() if e.spec.reason == "DriftCorrected"]
        assert event.involved_object.kind == "Application"
        calls = {"engine": "docker", "operation": "apply", "result": "success"}
        assert (bed.sample("zun_driver_calls_total", calls) or 0) >= 2
        assert bed.sample("zun_convergence_seconds_count", {"kind": "Application"}) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_missing_image_and_unschedulable_are_warning_events(bed: Bed) -> None:
    await bed.apply("Container", "ghost", {"image": "zun-test/nope:1"}, "demo")
    await bed.apply("Container", "huge", {"image": IMAGE, "resources": {"memory": "1Ti"}}, "demo")
    await bed.until(lambda: (c := bed.container("ghost")) and c.status.phase == "Error")
    await bed.until(lambda: (c := bed.container("huge")) and c.status.phase == "Pending")
    by_object = {(e.spec.involved_object.name, e.spec.reason) for e in await bed.events()}
    assert {("ghost", "Failed"), ("huge", "Unschedulable")} <= by_object  # the pull failed


async def test_events_expire_with_their_lease() -> None:
    now = [0.0]
    kv = MemoryKV(now=lambda: now[0])
    recorder = EventRecorder(RecordStore(kv), Metrics(), ttl=60)
    host = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Host",
            "metadata": {"name": "a", "uid": "u1"},
            "spec": {"endpoint": "tcp://a:2375"},
        }
    )
    recorder.record(host, "Warning", "NotReady", "engine unreachable")
    await recorder.flush()
    [kv_event] = (await kv.range("/zun/registry/events/")).kvs
    assert json.loads(kv_event.value)["metadata"]["project"] == "zun-system"
    now[0] = 61.0
    assert (await kv.range("/zun/registry/events/")).kvs == []


def test_convergence_is_timed_from_the_spec_change_to_ready() -> None:
    metrics, clock = Metrics(), [10.0]
    track = ConvergenceTracker("Container", metrics, clock=lambda: clock[0])

    def value(generation: int, observed: int, ready: str) -> Cached:
        status = {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready}],
        }
        data = {"metadata": {"generation": generation}, "status": status}
        return Cached(json.dumps(data).encode(), generation)

    track("k", None, value(1, 1, "True"))  # converged before it was seen: not timed
    track("k", value(1, 1, "True"), value(2, 1, "True"))
    clock[0] = 12.5
    track("k", value(2, 1, "True"), value(2, 2, "False"))
    assert track.waiting() == 1
    track("k", value(2, 2, "False"), value(2, 2, "True"))
    count = metrics.registry.get_sample_value(
        "zun_convergence_seconds_count", {"kind": "Container"}
    )
    total = metrics.registry.get_sample_value("zun_convergence_seconds_sum", {"kind": "Container"})
    assert (count, total, track.waiting()) == (1, 2.5, 0)


async def test_json_log_lines_of_a_reconcile_carry_its_context(bed: Bed) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ReconcileContextFilter())
    logger = logging.getLogger("zun_controller")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        # a memory limit under the engine's minimum fails the reconcile (an OCI runtime the
        # engine lacks no longer does: the scheduler leaves such a container Pending)
        spec = {"image": IMAGE, "resources": {"memory": "4Mi"}}
        await bed.apply("Container", "ghost", spec, "demo")
        await bed.until(lambda: "reconcile failed" in stream.getvalue())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [line, *_] = [x for x in lines if x["msg"] == "reconcile failed; retrying"]
    assert (line["kind"], line["project"], line["name"]) == ("Container", "demo", "ghost")
    assert len(line["reconcile_id"]) == 12
