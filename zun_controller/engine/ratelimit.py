"""Rate limiters: how long the workqueue waits before it hands out an item again.

The semantics are client-go's (k8s.io/client-go/util/workqueue): a per-item exponential
backoff, an overall token bucket that reserves tokens like golang.org/x/time/rate, the
maximum of several limiters, and the default controller limiter built from the first two.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Protocol

from zun_controller.engine.clock import Clock, RealClock


class RateLimiter(Protocol):
    """Decides the delay of each retry of an item and remembers its failures."""

    def when(self, item: Hashable) -> float:
        """Record a failure of `item` and return the seconds to wait before retrying it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking `item`: its next failure starts from the first delay again."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """Return how many failures of `item` are being tracked."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per item: `base * 2**failures` seconds, never more than `cap`."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        if base < 0 or cap < 0:
            raise ValueError("base and cap must not be negative")
        self._base = base
        self._cap = cap
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        return self._backoff(exponent)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)

    def _backoff(self, exponent: int) -> float:
        try:
            return min(math.ldexp(self._base, exponent), self._cap)
        except OverflowError:
            return self._cap


class BucketRateLimiter:
    """One token bucket for all items: `qps` tokens a second, at most `burst` saved up.

    Every call reserves a token; once the bucket is empty the delays grow by `1 / qps` per
    call, because each call waits for a token that earlier calls have not yet used.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._qps = qps
        self._burst = burst
        self._clock: Clock = clock or RealClock()
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, item: Hashable) -> float:
        if math.isinf(self._qps):
            return 0.0
        now = self._clock.now()
        self._tokens = self._tokens_at(now) - 1.0
        self._last = now
        return max(-self._tokens / self._qps, 0.0)

    def forget(self, item: Hashable) -> None:
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0

    def _tokens_at(self, now: float) -> float:
        if self._last is None:
            return self._tokens
        elapsed = max(now - self._last, 0.0)
        return min(self._tokens + elapsed * self._qps, float(self._burst))


class MaxOfRateLimiter:
    """The longest delay of several limiters; every limiter records every failure."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("at least one rate limiter is needed")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> MaxOfRateLimiter:
    """client-go's DefaultControllerRateLimiter: 5 ms doubling to 1000 s, and 10 qps, burst 100."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base=0.005, cap=1000.0),
        BucketRateLimiter(qps=10.0, burst=100, clock=clock),
    )
