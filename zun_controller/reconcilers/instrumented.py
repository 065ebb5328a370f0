"""A `Runtime` that counts and times every call of the one it wraps, by engine (the Host's
name) and operation: `zun_driver_calls_total` and `zun_driver_call_seconds`. Streams (`events`,
`logs`) pass through uncounted. The driver itself knows nothing of metrics.

Given a leader's `Fence` (store/fence.py), the calls that change the engine are refused with
`FencedError` once this replica may no longer hold the lease."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from zun_controller.drivers.runtime.base import Runtime, RuntimeFactory
from zun_controller.metrics import Metrics
from zun_controller.store.fence import Fence

#: the Runtime calls that are counted (every coroutine method of the port)
OPERATIONS = (
    "info", "list_containers", "inspect", "image_exists", "create", "start", "stop", "pause",
    "unpause", "remove", "update_resources", "ensure_network", "remove_network",
    "list_networks", "ensure_volume", "remove_volume", "list_volumes", "exec", "stats",
)  # fmt: skip


#: the calls that change the engine, refused without the lease
CHANGES = frozenset(
    {"create", "start", "stop", "pause", "unpause", "remove", "update_resources",
     "ensure_network", "remove_network", "ensure_volume", "remove_volume", "exec"}
)  # fmt: skip


class InstrumentedRuntime:
    def __init__(self, runtime: Runtime, metrics: Metrics, fence: Fence | None = None) -> None:
        self._runtime = runtime
        self._metrics = metrics
        self._fence = fence
        self.name = runtime.name
        metrics.init_driver(runtime.name, OPERATIONS)

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._runtime, attr)
        if attr not in OPERATIONS:
            return target
        wrapped = self._timed(attr, target)
        setattr(self, attr, wrapped)  # wrap once per operation
        return wrapped

    def _timed(
        self, operation: str, call: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        calls, seconds = self._metrics.driver_calls, self._metrics.driver_seconds
        ok = calls.labels(self.name, operation, "success")
        failed = calls.labels(self.name, operation, "error")
        timer = seconds.labels(self.name, operation)
        fence = self._fence if operation in CHANGES else None

        @functools.wraps(call)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if fence is not None:
                fence.check(f"{operation} on {self.name}")
            started = time.perf_counter()
            try:
                result = await call(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed.inc()
                raise
            finally:
                timer.observe(time.perf_counter() - started)
            ok.inc()
            return result

        return timed

    async def close(self) -> None:
        await self._runtime.close()


def instrumented(
    factory: RuntimeFactory, metrics: Metrics, fence: Fence | None = None
) -> RuntimeFactory:
    """A factory whose runtimes are counted and timed (and fenced, given a leader's fence)."""

    def make(name: str, endpoint: str, *, tls: Mapping[str, str] | None = None) -> Runtime:
        runtime = factory(name, endpoint, tls=tls)
        return cast(Runtime, InstrumentedRuntime(runtime, metrics, fence))

    return make
