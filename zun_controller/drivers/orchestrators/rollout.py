"""Rolling-update arithmetic every orchestrator shares: maxSurge / maxUnavailable as counts.

As Kubernetes Deployments do: a percentage of the desired replicas, surge rounded up and
unavailability rounded down; if both come out 0, one replica may be unavailable so a rollout
can always move.
"""

from __future__ import annotations

import math

from zun_controller.models.application import IntOrPercent, UpdateStrategy


def resolve(value: IntOrPercent, total: int, *, round_up: bool) -> int:
    """A count or a percentage of `total` as a count."""
    if isinstance(value, int):
        return value
    share = total * int(value[:-1]) / 100
    return math.ceil(share) if round_up else math.floor(share)


def surge_and_unavailable(strategy: UpdateStrategy, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in replicas for `replicas` desired."""
    rolling = strategy.rolling_update
    surge = resolve(rolling.max_surge, replicas, round_up=True)
    unavailable = resolve(rolling.max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def min_available(strategy: UpdateStrategy, replicas: int) -> int:
    """How many replicas must stay available during a rollout."""
    return max(0, replicas - surge_and_unavailable(strategy, replicas)[1])
