"""The workqueue: client-go's dedup, one worker per key, delays, backoff and shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from zun_controller.engine.clock import FakeClock
from zun_controller.engine.ratelimit import ItemExponentialFailureRateLimiter
from zun_controller.engine.workqueue import ShutDown, WorkQueue


@dataclass
class RecordingMetrics:
    adds: int = 0
    retries: int = 0
    depths: list[int] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    worked: list[float] = field(default_factory=list)

    def add(self) -> None:
        self.adds += 1

    def get(self, queued_seconds: float) -> None:
        self.queued.append(queued_seconds)

    def done(self, work_seconds: float) -> None:
        self.worked.append(work_seconds)

    def depth(self, n: int) -> None:
        self.depths.append(n)

    def retry(self) -> None:
        self.retries += 1


def other_tasks() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
async def queue(clock: FakeClock, metrics: RecordingMetrics) -> AsyncIterator[WorkQueue[str]]:
    queue = WorkQueue[str]("test", clock=clock, metrics=metrics)
    yield queue
    queue.shutdown()
    await clock.settle()
    assert not other_tasks()


async def drain(queue: WorkQueue[str]) -> list[str]:
    items = []
    while len(queue):
        item = await queue.get()
        items.append(item)
        queue.done(item)
    return items


async def test_fake_clock_wakes_sleepers_in_deadline_order(clock: FakeClock) -> None:
    woken: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woken.append(name)

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in [("late", 2.0), ("early", 1.0)]]
    await clock.wait_for_sleepers(2)
    clock.advance(0.5)
    await clock.settle()
    assert woken == []
    clock.advance(5.0)
    await asyncio.gather(*tasks)
    assert woken == ["early", "late"]
    assert clock.pending_sleepers == 0


async def test_fake_clock_forgets_cancelled_sleepers(clock: FakeClock) -> None:
    task = asyncio.create_task(clock.sleep(1.0))
    await clock.wait_for_sleepers(1)
    task.cancel()
    await clock.settle()
    assert task.cancelled()
    assert clock.pending_sleepers == 0


async def test_items_come_out_in_fifo_order(queue: WorkQueue[str]) -> None:
    for item in ["c", "a", "b"]:
        queue.add(item)
    assert await drain(queue) == ["c", "a", "b"]


async def test_waiting_item_is_not_queued_twice(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert await drain(queue) == ["a", "b"]


async def test_item_added_while_processing_is_queued_again_on_done(queue: WorkQueue[str]) -> None:
    queue.add("a")
    item = await queue.get()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0
    queue.done(item)
    assert len(queue) == 1
    assert await drain(queue) == ["a"]


async def test_done_without_get_changes_nothing(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.done("a")
    queue.done("b")
    assert await drain(queue) == ["a"]


async def test_get_waits_for_an_add(queue: WorkQueue[str], clock: FakeClock) -> None:
    getter = asyncio.create_task(queue.get())
    await clock.settle()
    assert not getter.done()
    queue.add("a")
    assert await getter == "a"
    queue.done("a")


async def test_cancelled_getter_hands_its_item_to_another(
    queue: WorkQueue[str], clock: FakeClock
) -> None:
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await clock.settle()
    queue.add("a")
    first.cancel()
    assert await second == "a"
    assert first.cancelled()
    queue.done("a")


async def test_a_key_is_never_on_two_workers(queue: WorkQueue[str]) -> None:
    in_flight: set[str] = set()
    processed: list[str] = []
    enough = asyncio.Event()

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            assert key not in in_flight
            in_flight.add(key)
            await asyncio.sleep(0)
            queue.add(key if len(processed) < 200 else "other")
            await asyncio.sleep(0)
            in_flight.remove(key)
            processed.append(key)
            queue.done(key)
            if len(processed) >= 300:
                enough.set()

    for key in ["k1", "k2", "k3"]:
        queue.add(key)
    workers = [asyncio.create_task(worker()) for _ in range(5)]
    await enough.wait()
    queue.shutdown()
    await asyncio.gather(*workers)
    assert {"k1", "k2", "k3"} <= set(processed)


async def test_add_after_waits_for_the_delay(queue: WorkQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 2.0)
    await clock.wait_for_sleepers(1)
    clock.advance(1.0)
    await clock.settle()
    assert len(queue) == 0
    clock.advance(1.0)
    await clock.settle()
    assert await drain(queue) == ["a"]


async def test_add_after_releases_items_by_ready_time(
    queue: WorkQueue[str], clock: FakeClock
) -> None:
    queue.add_after("b", 2.0)
    queue.add_after("c", 3.0)
    queue.add_after("a", 1.0)
    await clock.wait_for_sleepers(1)
    clock.advance(3.0)
    await clock.settle()
    assert await drain(queue) == ["a", "b", "c"]


async def test_add_after_keeps_the_earlier_time(queue: WorkQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 4.0)
    queue.add_after("a", 1.0)
    queue.add_after("a", 2.0)
    await clock.wait_for_sleepers(1)
    clock.advance(1.0)
    await clock.settle()
    assert await drain(queue) == ["a"]
    clock.advance(4.0)
    await clock.settle()
    assert len(queue) == 0


async def test_add_after_without_delay_adds_now(queue: WorkQueue[str]) -> None:
    queue.add_after("a", 0.0)
    queue.add_after("b", -1.0)
    assert await drain(queue) == ["a", "b"]


async def test_delayed_item_already_waiting_is_not_queued_twice(
    queue: WorkQueue[str], clock: FakeClock
) -> None:
    queue.add_after("a", 1.0)
    queue.add("a")
    await clock.wait_for_sleepers(1)
    clock.advance(1.0)
    await clock.settle()
    assert len(queue) == 1


async def test_rate_limited_adds_back_off_exponentially(clock: FakeClock) -> None:
    limiter = ItemExponentialFailureRateLimiter(base=0.005, cap=1000.0)
    queue = WorkQueue[str](clock=clock, rate_limiter=limiter)
    for expected_delay in [0.005, 0.01, 0.02]:
        queue.add_rate_limited("a")
        await clock.wait_for_sleepers(1)
        clock.advance(expected_delay / 2)
        await clock.settle()
        assert len(queue) == 0
        clock.advance(expected_delay / 2)
        await clock.settle()
        assert await drain(queue) == ["a"]
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    queue.shutdown()


async def test_shutdown_drains_waiting_items_then_raises(queue: WorkQueue[str]) -> None:
    queue.add("a")
    queue.add("b")
    queue.shutdown()
    queue.add("c")
    assert queue.shutting_down
    assert await drain(queue) == ["a", "b"]
    with pytest.raises(ShutDown):
        await queue.get()


async def test_shutdown_wakes_waiting_getters(queue: WorkQueue[str], clock: FakeClock) -> None:
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await clock.settle()
    queue.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(result, ShutDown) for result in results)


async def test_shutdown_drops_delayed_items_and_stops_the_timer(
    queue: WorkQueue[str], clock: FakeClock
) -> None:
    queue.add_after("a", 1.0)
    await clock.wait_for_sleepers(1)
    queue.shutdown()
    queue.add_after("b", 1.0)
    queue.add_rate_limited("c")
    await clock.settle()
    assert clock.pending_sleepers == 0
    assert not other_tasks()
    clock.advance(2.0)
    assert len(queue) == 0


async def test_shutdown_with_drain_waits_for_processing(
    queue: WorkQueue[str], clock: FakeClock
) -> None:
    queue.add("a")
    queue.add_after("b", 1.0)
    item = await queue.get()
    draining = asyncio.create_task(queue.shutdown_with_drain())
    await clock.settle()
    assert not draining.done()
    queue.done(item)
    await draining
    assert not other_tasks()


async def test_shutdown_ends_a_drain_early(queue: WorkQueue[str], clock: FakeClock) -> None:
    queue.add("a")
    await queue.get()
    draining = asyncio.create_task(queue.shutdown_with_drain())
    await clock.settle()
    queue.shutdown()
    await draining


async def test_shutdown_with_drain_returns_at_once_when_idle(queue: WorkQueue[str]) -> None:
    await queue.shutdown_with_drain()
    assert queue.shutting_down


async def test_metrics_report_adds_depth_and_durations(
    queue: WorkQueue[str], clock: FakeClock, metrics: RecordingMetrics
) -> None:
    queue.add("a")
    queue.add("a")
    queue.add("b")
    clock.advance(2.0)
    item = await queue.get()
    queue.add("a")
    clock.advance(3.0)
    queue.done(item)
    assert metrics.adds == 3
    assert metrics.depths == [1, 2, 1, 2]
    assert metrics.queued == [2.0]
    assert metrics.worked == [3.0]


async def test_metrics_count_every_delayed_add_as_a_retry(
    queue: WorkQueue[str], metrics: RecordingMetrics
) -> None:
    queue.add_rate_limited("a")
    queue.add_after("b", 0.0)
    queue.add("c")
    assert metrics.retries == 2


async def test_ten_thousand_keys_cost_little_cpu(clock: FakeClock) -> None:
    queue = WorkQueue[str](clock=clock)
    keys = [f"containers/demo/web-{i}" for i in range(10_000)]
    processed: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            processed.append(key)
            queue.done(key)

    started = time.process_time()
    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for key in keys:
        queue.add(key)
    queue.shutdown()
    await asyncio.gather(*workers)
    assert time.process_time() - started < 1.0
    assert processed == keys
