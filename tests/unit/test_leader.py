"""Leader election on the in-memory KV with a fake clock: one leader, takeover, step-down."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from zun_controller.drivers.runtime.fake import FakeRuntime
from zun_controller.engine.clock import FakeClock
from zun_controller.engine.controller import Controller
from zun_controller.engine.informer import Informer
from zun_controller.engine.leader import LeaderElector, LeadershipLost
from zun_controller.engine.manager import Manager
from zun_controller.engine.reconciler import Result
from zun_controller.errors import FencedError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.reconcilers.instrumented import InstrumentedRuntime
from zun_controller.store.fence import Fence
from zun_controller.store.kv import Txn
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

CONTAINER = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
             "metadata": {"name": "x", "project": "p"}, "spec": {"image": "i"}}  # fmt: skip


async def forever() -> None:
    await asyncio.Event().wait()


def elector(kv: MemoryKV, clock: FakeClock, identity: str) -> LeaderElector:
    return LeaderElector(kv, metrics=Metrics(), identity=identity, ttl=9, clock=clock)


async def test_one_leader_and_takeover_after_lease_expiry() -> None:
    clock = FakeClock()
    kv = MemoryKV(now=clock.now)
    a, b = elector(kv, clock, "a"), elector(kv, clock, "b")
    leading: list[str] = []
    a_stop = asyncio.Event()

    async def lead_a() -> None:
        leading.append("a")
        await a_stop.wait()

    async def lead_b() -> None:
        leading.append("b")
        await forever()

    ta = asyncio.create_task(a.run(lead_a))
    await clock.settle()
    tb = asyncio.create_task(b.run(lead_b))
    for _ in range(10):
        clock.advance(1)
        await clock.settle()
    assert leading == ["a"] and a.is_leader and not b.is_leader
    a_stop.set()
    await ta
    for _ in range(3):
        clock.advance(1)
        await clock.settle()
    assert leading == ["a", "b"] and b.is_leader
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)


async def test_leader_steps_down_when_its_lease_is_gone() -> None:
    clock = FakeClock()
    kv = MemoryKV(now=clock.now)
    a = elector(kv, clock, "a")
    task = asyncio.create_task(a.run(forever))
    await clock.settle()
    assert a.is_leader
    await kv.revoke_lease(a._lease)
    for _ in range(4):
        clock.advance(1)
        await clock.settle()
    with pytest.raises(LeadershipLost):
        await task
    assert not a.is_leader


async def lose_lease_while_reconciling(
    reconciler: Any, records: int, started: asyncio.Event
) -> None:
    """A leader with one single-worker controller over `records` Containers: once `started`,
    its lease is revoked; returns when the manager has stopped with LeadershipLost."""
    clock = FakeClock()
    kv = MemoryKV(now=clock.now)
    store = RecordStore(kv)
    metrics = Metrics()
    informer = Informer(store, Container, metrics=metrics)
    elector = LeaderElector(kv, metrics=metrics, identity="a", ttl=9, clock=clock)
    manager = Manager(metrics=metrics, elector=elector, health_port=None)
    manager.add_controller(
        Controller("c", reconciler, informer, store=store, metrics=metrics, workers=1)
    )
    for i in range(records):
        await store.create(parse({**CONTAINER, "metadata": {"name": f"x{i}", "project": "p"}}))
    running = asyncio.create_task(manager.run(asyncio.Event()))
    await asyncio.wait_for(started.wait(), 5)
    await kv.revoke_lease(elector._lease)
    for _ in range(4):
        clock.advance(3)
        await clock.settle()
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(running, 5)


async def test_a_replica_that_loses_its_lease_cancels_in_flight_work_at_once() -> None:
    started, cancelled, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

    class Blocking:
        async def reconcile(self, key: str) -> Result:
            started.set()
            try:
                await asyncio.Event().wait()  # in-flight work that would take long
            except asyncio.CancelledError:
                cancelled.set()
                raise
            finished.set()
            return Result()

    await lose_lease_while_reconciling(Blocking(), 1, started)
    assert cancelled.is_set() and not finished.is_set()


async def test_a_worker_that_misses_its_cancel_takes_no_further_key() -> None:
    """Python 3.11's asyncio.wait_for returns the result when the awaited future completes just
    as the task is cancelled, so a worker can miss its cancel. The long chaos run saw a replica
    that had lost its lease reconcile the rest of its queue for minutes that way."""
    started = asyncio.Event()
    keys: list[str] = []

    class SwallowsOneCancel:
        async def reconcile(self, key: str) -> Result:
            keys.append(key)
            if len(keys) == 1:
                started.set()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
            return Result()

    await lose_lease_while_reconciling(SwallowsOneCancel(), 20, started)
    assert len(keys) == 1, f"reconciled after the lease was lost: {keys[1:]}"


async def test_a_starved_leader_refuses_engine_calls_before_its_lease_can_expire() -> None:
    clock = FakeClock()
    kv = MemoryKV(now=clock.now)
    a = elector(kv, clock, "a")
    task = asyncio.create_task(a.run(forever))
    await clock.settle()
    engine = InstrumentedRuntime(FakeRuntime("e"), Metrics(), a.fence)
    await engine.ensure_volume("v1", {})
    # time passes but the renew loop does not get to run (a starved event loop)
    clock.advance(a.renew_deadline + 0.1)
    with pytest.raises(FencedError, match="ensure_volume on e"):
        await engine.ensure_volume("v2", {})
    assert [v.name for v in await engine.list_volumes({})] == ["v1"]  # reads still pass
    assert a.renew_deadline < a.ttl  # refused before etcd could let a rival in
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_write_refused_by_the_fence_stops_the_leader_at_once() -> None:
    clock = FakeClock()
    kv = MemoryKV(now=clock.now)
    a = elector(kv, clock, "a")
    store = RecordStore(kv).fenced(a.fence)
    written: list[str] = []

    async def lead() -> None:
        made = await store.create(parse(CONTAINER))
        written.append(made.name)
        await asyncio.Event().wait()

    task = asyncio.create_task(a.run(lead))
    await clock.settle()
    assert written == ["x"]
    # a rival holds the leader key now, and a's renew loop has not run yet
    await kv.revoke_lease(a._lease)
    b = elector(kv, clock, "b")
    assert await b._try_acquire()
    with pytest.raises(FencedError):
        await store.update(await store.get(Container, "x", "p"))
    with pytest.raises(LeadershipLost, match="refused a write"):
        await asyncio.wait_for(task, 5)
    assert not a.is_leader and b.fence.holds()


async def test_workers_take_no_key_while_the_lease_is_unsure_and_resume_on_renewal() -> None:
    """Renewals that lag (etcd restarting, a starved loop) make the fence unsure: workers then
    wait instead of taking key after key only to refuse it, and go on once a renewal lands."""
    clock = FakeClock()
    kv = MemoryKV(now=clock.now)
    metrics = Metrics()
    won = await kv.commit(Txn(compares=[("/lease", 0)], puts=[("/lease", b"a")]))
    fence = Fence(clock.now)
    fence.arm("/lease", won.revision, clock.now() + 5)
    plain, fenced = RecordStore(kv), RecordStore(kv).fenced(fence)
    handed_out: list[str] = []  # every key a worker took, reconciled or refused
    took = asyncio.Event()

    def observe(controller: str, key: str, start: float, end: float) -> None:
        handed_out.append(key.rsplit("/", 1)[1])
        took.set()

    class Noop:
        async def reconcile(self, key: str) -> Result:
            return Result()

    controller = Controller("c", Noop(), Informer(fenced, Container, metrics=metrics),
                            store=fenced, metrics=metrics)  # fmt: skip
    manager = Manager(metrics=metrics, health_port=None, observer=observe)
    manager.add_controller(controller)
    running = asyncio.create_task(manager.run(asyncio.Event()))
    await plain.create(parse({**CONTAINER, "metadata": {"name": "before", "project": "p"}}))
    await asyncio.wait_for(took.wait(), 5)
    clock.advance(6)  # past the renew deadline, no renewal yet
    took.clear()
    await plain.create(parse({**CONTAINER, "metadata": {"name": "during", "project": "p"}}))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(took.wait(), 0.5)
    assert handed_out == ["before"]
    fence.renewed(clock.now() + 5)
    await asyncio.wait_for(took.wait(), 5)
    assert handed_out == ["before", "during"]
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
