"""Driver calls counted and timed by engine and operation (`zun_driver_calls_total`,
`zun_driver_call_seconds`); the drivers themselves know nothing of metrics.

- `InstrumentedRuntime` wraps a `Runtime`; engine is the Host's name. Streams (`events`,
  `logs`) pass through uncounted. Given a leader's `Fence` (store/fence.py), the calls that
  change the engine are refused with `FencedError` once this replica may no longer hold the
  lease.
- `InstrumentedOrchestrator` wraps an `Orchestrator`; engine is the Cluster's type (`swarm`,
  `kubernetes`, `docker`: three values, whatever the number of Clusters). Its writes are
  fenced by the Application reconciler (`check_leading`) and, for `docker`, by the store."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from zun_controller.drivers.orchestrators.base import (
    AppObservation,
    ClusterInfo,
    Orchestrator,
    OwnedApp,
)
from zun_controller.drivers.runtime.base import Runtime, RuntimeFactory
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application, AppTemplate, ClusterType
from zun_controller.store.fence import Fence

T = TypeVar("T")

#: the Runtime calls that are counted (every coroutine method of the port)
OPERATIONS = (
    "info", "list_containers", "inspect", "image_exists", "create", "start", "stop", "pause",
    "unpause", "remove", "update_resources", "ensure_network", "remove_network",
    "list_networks", "ensure_volume", "remove_volume", "list_volumes", "exec", "stats",
    "inspect_image", "pull_image", "list_images", "remove_image",
)  # fmt: skip


#: the calls that change the engine, refused without the lease
CHANGES = frozenset(
    {"create", "start", "stop", "pause", "unpause", "remove", "update_resources",
     "ensure_network", "remove_network", "ensure_volume", "remove_volume", "exec",
     "pull_image", "remove_image"}
)  # fmt: skip


class _Meter:
    """Counts and times the calls of one engine and operation."""

    def __init__(self, metrics: Metrics, engine: str, operation: str) -> None:
        self._ok = metrics.driver_calls.labels(engine, operation, "success")
        self._failed = metrics.driver_calls.labels(engine, operation, "error")
        self._timer = metrics.driver_seconds.labels(engine, operation)

    async def __call__(self, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            result = await call
        except asyncio.CancelledError:
            raise
        except Exception:
            self._failed.inc()
            raise
        finally:
            self._timer.observe(time.perf_counter() - started)
        self._ok.inc()
        return result


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
        meter = _Meter(self._metrics, self.name, operation)
        fence = self._fence if operation in CHANGES else None

        @functools.wraps(call)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if fence is not None:
                fence.check(f"{operation} on {self.name}")
            return await meter(call(*args, **kwargs))

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


#: the Orchestrator calls that are counted (every coroutine method of the port but close)
ORCHESTRATOR_OPERATIONS = ("info", "apply", "observe", "delete", "list_owned")
ORCHESTRATOR_ENGINES = tuple(t.value for t in ClusterType)


def init_orchestrator_metrics(metrics: Metrics) -> None:
    """Every engine's and operation's series at 0, before any Cluster exists."""
    for engine in ORCHESTRATOR_ENGINES:
        metrics.init_driver(engine, ORCHESTRATOR_OPERATIONS)


class InstrumentedOrchestrator:
    def __init__(self, orchestrator: Orchestrator, metrics: Metrics, engine: ClusterType) -> None:
        self._orchestrator = orchestrator
        self._meters = {op: _Meter(metrics, engine.value, op) for op in ORCHESTRATOR_OPERATIONS}

    async def info(self) -> ClusterInfo:
        return await self._meters["info"](self._orchestrator.info())

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        return await self._meters["apply"](self._orchestrator.apply(app, template, revision))

    async def observe(self, app: Application, revision: str) -> AppObservation:
        return await self._meters["observe"](self._orchestrator.observe(app, revision))

    async def delete(self, app: Application) -> bool:
        return await self._meters["delete"](self._orchestrator.delete(app))

    async def list_owned(self) -> list[OwnedApp]:
        return await self._meters["list_owned"](self._orchestrator.list_owned())

    async def close(self) -> None:
        await self._orchestrator.close()
