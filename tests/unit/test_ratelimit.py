"""Rate limiters: client-go's backoff, token bucket and default controller limiter."""

from __future__ import annotations

import pytest

from zun_controller.engine.clock import FakeClock
from zun_controller.engine.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_backoff_doubles_from_5ms() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert limiter.num_requeues("a") == 5


def test_exponential_backoff_is_capped_at_1000s_without_overflow() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(2000)]
    assert delays[17] == pytest.approx(0.005 * 2**17)
    assert delays[18] == 1000.0
    assert delays[-1] == 1000.0


def test_forget_resets_backoff() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    limiter.when("a")
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)


def test_backoff_is_per_item() -> None:
    limiter = ItemExponentialFailureRateLimiter(base=1.0, cap=60.0)
    limiter.when("a")
    limiter.when("a")
    assert limiter.when("b") == 1.0
    assert limiter.when("a") == 4.0


def test_bucket_is_free_until_the_burst_is_spent() -> None:
    limiter = BucketRateLimiter(qps=10.0, burst=100, clock=FakeClock())
    assert [limiter.when(i) for i in range(100)] == [0.0] * 100


def test_bucket_reserves_tokens_ahead_after_the_burst() -> None:
    limiter = BucketRateLimiter(qps=10.0, burst=100, clock=FakeClock())
    for i in range(100):
        limiter.when(i)
    assert [limiter.when(i) for i in range(3)] == pytest.approx([0.1, 0.2, 0.3])


def test_bucket_refills_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps=2.0, burst=2, clock=clock)
    assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])
    clock.advance(0.5)
    assert limiter.when("x") == pytest.approx(0.5)
    clock.advance(100.0)
    assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.0, 0.0, 0.5])


def test_bucket_tracks_no_items() -> None:
    limiter = BucketRateLimiter(qps=1.0, burst=1, clock=FakeClock())
    limiter.when("a")
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_max_of_takes_the_longest_delay_and_forgets_everywhere() -> None:
    fast = ItemExponentialFailureRateLimiter(base=1.0, cap=100.0)
    slow = ItemExponentialFailureRateLimiter(base=3.0, cap=100.0)
    limiter = MaxOfRateLimiter(fast, slow)
    assert [limiter.when("a") for _ in range(2)] == [3.0, 6.0]
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert fast.num_requeues("a") == slow.num_requeues("a") == 0


def test_default_controller_limiter_backs_off_per_item_then_overall() -> None:
    limiter = default_controller_rate_limiter(FakeClock())
    assert [limiter.when("a") for _ in range(3)] == pytest.approx([0.005, 0.01, 0.02])
    for i in range(97):
        assert limiter.when(i) == pytest.approx(0.005)
    assert limiter.when("b") == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("qps", "burst"),
    [(0.0, 10), (-1.0, 10), (10.0, 0)],
)
def test_bucket_rejects_settings_it_cannot_honour(qps: float, burst: int) -> None:
    with pytest.raises(ValueError):
        BucketRateLimiter(qps=qps, burst=burst)


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError):
        MaxOfRateLimiter()
