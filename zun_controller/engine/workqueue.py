"""The engine's workqueue of keys, with the semantics of client-go's util/workqueue.

A key waiting in the queue is never queued twice; a key being processed is never handed to
a second worker: if it is added meanwhile it is queued again when the first worker calls
`done`. Keys can be added after a delay (the earliest requested time wins) or after the
delay a `RateLimiter` chooses. Time comes from an injected `Clock`, so tests never sleep.

All methods must be called from the event loop's thread; the delayed adds need a running
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from zun_controller.engine.clock import Clock, RealClock
from zun_controller.engine.ratelimit import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """Raised by `WorkQueue.get` once the queue is shut down and empty."""


class QueueMetrics(Protocol):
    """What a queue reports, mapped onto client-go's workqueue_* metrics."""

    def add(self) -> None:
        """An add was accepted (workqueue_adds_total)."""
        ...

    def get(self, queued_seconds: float) -> None:
        """An item left the queue after waiting (workqueue_queue_duration_seconds)."""
        ...

    def done(self, work_seconds: float) -> None:
        """An item was processed for this long (workqueue_work_duration_seconds)."""
        ...

    def depth(self, n: int) -> None:
        """This many items now wait to be handed out (workqueue_depth)."""
        ...

    def retry(self) -> None:
        """A delayed or rate-limited add was requested (workqueue_retries_total)."""
        ...


class NoQueueMetrics:
    """Reports nothing."""

    def add(self) -> None:
        return None

    def get(self, queued_seconds: float) -> None:
        return None

    def done(self, work_seconds: float) -> None:
        return None

    def depth(self, n: int) -> None:
        return None

    def retry(self) -> None:
        return None


class _DelayedItems(Generic[T]):
    """Items waiting for their ready time; an item keeps its earliest requested time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._entries: dict[T, tuple[float, int]] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def push(self, item: T, ready_at: float) -> bool:
        """Schedule `item`; False if it was already scheduled no later than `ready_at`."""
        known = self._entries.get(item)
        if known is not None and known[0] <= ready_at:
            return False
        entry = (ready_at, next(self._order))
        self._entries[item] = entry
        heapq.heappush(self._heap, (*entry, item))
        return True

    def next_ready_at(self) -> float | None:
        self._drop_superseded()
        return self._heap[0][0] if self._heap else None

    def pop_ready(self, now: float) -> list[T]:
        ready: list[T] = []
        while (ready_at := self.next_ready_at()) is not None and ready_at <= now:
            item = heapq.heappop(self._heap)[2]
            del self._entries[item]
            ready.append(item)
        return ready

    def clear(self) -> None:
        self._heap.clear()
        self._entries.clear()

    def _drop_superseded(self) -> None:
        while self._heap:
            ready_at, order, item = self._heap[0]
            if self._entries.get(item) == (ready_at, order):
                return
            heapq.heappop(self._heap)


class WorkQueue(Generic[T]):
    """A deduplicating, delaying, rate-limiting FIFO of keys for reconcile workers."""

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        rate_limiter: RateLimiter | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        self.name = name
        self._clock: Clock = clock or RealClock()
        self._rate_limiter = rate_limiter or default_controller_rate_limiter(self._clock)
        self._metrics: QueueMetrics = metrics or NoQueueMetrics()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._added_at: dict[T, float] = {}
        self._processing: dict[T, float] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._drainers: list[asyncio.Future[None]] = []
        self._delayed: _DelayedItems[T] = _DelayedItems()
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = math.inf
        self._shutting_down = False
        self._drain = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, item: T) -> None:
        """Mark `item` as needing processing, unless it already waits or we shut down."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        self._added_at.setdefault(item, self._clock.now())
        self._metrics.add()
        self._metrics.depth(len(self._dirty))
        if item not in self._processing:
            self._enqueue(item)

    async def get(self) -> T:
        """Wait for an item and mark it as being processed; call `done` with it afterwards.

        Raises `ShutDown` once the queue is shut down and no item is left.
        """
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            await self._wait_for_item()
        return self._start_processing(self._queue.popleft())

    def done(self, item: T) -> None:
        """Mark `item` as processed; queue it again if it was added while processed."""
        started_at = self._processing.pop(item, None)
        if started_at is None:
            return
        self._metrics.done(self._clock.now() - started_at)
        if item in self._dirty:
            self._enqueue(item)
        if not self._processing:
            _wake_all(self._drainers)

    def add_after(self, item: T, delay: float) -> None:
        """Add `item` once `delay` seconds have passed; an earlier pending time wins."""
        if self._shutting_down:
            return
        self._metrics.retry()
        if delay <= 0:
            self.add(item)
            return
        ready_at = self._clock.now() + delay
        if self._delayed.push(item, ready_at) and ready_at < self._timer_at:
            self._restart_timer(ready_at)

    def add_rate_limited(self, item: T) -> None:
        """Add `item` after the delay the rate limiter chooses for its next retry."""
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Reset the rate limiter's failure count for `item`."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self._rate_limiter.num_requeues(item)

    def shutdown(self) -> None:
        """Ignore new items; getters drain the queue, then get `ShutDown`."""
        self._drain = False
        self._begin_shutdown()
        _wake_all(self._drainers)

    async def shutdown_with_drain(self) -> None:
        """Shut down, then wait until every item handed out is done (or `shutdown` is called)."""
        self._drain = True
        self._begin_shutdown()
        while self._processing and self._drain:
            await self._wait_for_drain()
        if self._timer is not None:
            await asyncio.wait([self._timer])

    def _enqueue(self, item: T) -> None:
        self._queue.append(item)
        _wake_one(self._getters)

    def _start_processing(self, item: T) -> T:
        now = self._clock.now()
        self._dirty.discard(item)
        self._processing[item] = now
        self._metrics.depth(len(self._dirty))
        self._metrics.get(now - self._added_at.pop(item, now))
        return item

    async def _wait_for_item(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._getters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                _discard(self._getters, waiter)
            else:
                _wake_one(self._getters)
            raise

    async def _wait_for_drain(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drainers.append(waiter)
        try:
            await waiter
        finally:
            _discard(self._drainers, waiter)

    def _begin_shutdown(self) -> None:
        self._shutting_down = True
        self._delayed.clear()
        self._timer_at = math.inf
        if self._timer is not None:
            self._timer.cancel()
        _wake_all(self._getters)

    def _restart_timer(self, ready_at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = ready_at
        self._timer = asyncio.get_running_loop().create_task(
            self._release_delayed(), name=f"workqueue {self.name}: delayed adds"
        )

    async def _release_delayed(self) -> None:
        while (ready_at := self._delayed.next_ready_at()) is not None:
            self._timer_at = ready_at
            await self._clock.sleep(ready_at - self._clock.now())
            for item in self._delayed.pop_ready(self._clock.now()):
                self.add(item)
        self._timer_at = math.inf


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


def _wake_all(waiters: deque[asyncio.Future[None]] | list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
    waiters.clear()


def _discard(
    waiters: deque[asyncio.Future[None]] | list[asyncio.Future[None]],
    waiter: asyncio.Future[None],
) -> None:
    with contextlib.suppress(ValueError):
        waiters.remove(waiter)
