"""The one retry loop of the harness: every write of the workload is repeated until it is
acknowledged, through the outages the faults cause, within a time limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from zun_controller.errors import ConflictError, TransientError

T = TypeVar("T")
#: what an etcd outage or a lost race looks like to a store write
STORE_OUTAGES: tuple[type[BaseException], ...] = (TransientError, ConflictError, TimeoutError)


class NotYet(Exception):
    """An answer that means "try again" (a 5xx, a 409 from a lost race)."""


async def retrying(
    op: Callable[[], Awaitable[T]],
    limit: float = 120.0,
    retry_on: tuple[type[BaseException], ...] = STORE_OUTAGES,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """`op()` until it returns; what `retry_on` names is retried every 0.3 s for `limit`
    seconds, then raised. The op must be safe to repeat."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return await op()
        except retry_on:
            if time.monotonic() > deadline:
                raise
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(0.3)
