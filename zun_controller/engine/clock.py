"""Time as the engine sees it: a `Clock` port, the real clock and a fake one for tests.

The workqueue and the rate limiters read time and sleep only through a `Clock`, so tests
drive backoff and delayed adds by advancing a `FakeClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time and sleeping."""

    def now(self) -> float:
        """Return monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller until `seconds` have passed on this clock."""
        ...


class RealClock:
    """The process's monotonic clock and the event loop's timers."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """A clock that moves only when a test calls `advance` or `set`.

    Sleepers wake, in deadline order, once the time reaches their deadline.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        waker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), waker))
        try:
            await waker
        finally:
            waker.cancel()

    @property
    def pending_sleepers(self) -> int:
        """How many tasks are sleeping on this clock right now."""
        return sum(1 for _, _, waker in self._sleepers if not waker.done())

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake the sleepers that are due."""
        if seconds < 0:
            raise ValueError("a monotonic clock cannot go back")
        self.set(self._now + seconds)

    def set(self, now: float) -> None:
        """Move time forward to `now` and wake the sleepers that are due."""
        if now < self._now:
            raise ValueError("a monotonic clock cannot go back")
        self._now = now
        while self._sleepers and self._sleepers[0][0] <= now:
            waker = heapq.heappop(self._sleepers)[2]
            if not waker.done():
                waker.set_result(None)

    async def settle(self, rounds: int = 20) -> None:
        """Yield to the event loop so that woken tasks run until they block again."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def wait_for_sleepers(self, count: int = 1, rounds: int = 1000) -> None:
        """Yield until at least `count` tasks sleep on this clock."""
        for _ in range(rounds):
            if self.pending_sleepers >= count:
                return
            await asyncio.sleep(0)
        raise TimeoutError(f"{self.pending_sleepers} sleepers, expected {count}")
