"""Tasks that tie the engines to the workqueue: event streams and the orphan sweep.

- `RuntimeEvents`: one event stream per ready Host; a container event (start, die, stop,
  pause, kill, destroy, health_status, ...) enqueues its record at once, so drift such as a
  `docker stop` behind Zun's back is seen promptly rather than at the next resync. Opening a
  stream enqueues every record placed on that host, to cover what happened unwatched.
- `OrphanSweeper`: removes containers carrying Zun's labels whose record no longer exists (a
  record deleted straight from etcd, say); never touches containers without Zun's labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from zun_controller.drivers.runtime.base import Runtime
from zun_controller.engine.client import Records
from zun_controller.errors import ZunError
from zun_controller.models.base import LABEL_INSTANCE, LABEL_NAME, LABEL_PROJECT, LABEL_UID
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.reconcilers.naming import kind_selector
from zun_controller.reconcilers.runtimes import RuntimePool

log = logging.getLogger(__name__)


def _ready_hosts(hosts: Records[Host]) -> dict[str, Host]:
    return {h.name: h for h in hosts.all(lambda h: h.status.is_true("Ready"))}


class RuntimeEvents:
    def __init__(
        self,
        hosts: Records[Host],
        pool: RuntimePool,
        enqueue: Callable[[str], None],
        placed_on: Callable[[str], Iterable[str]],
        *,
        rescan_every: float = 1.0,
    ) -> None:
        self.hosts, self.pool, self.enqueue = hosts, pool, enqueue
        self.placed_on = placed_on
        self.rescan_every = rescan_every
        self._streams: dict[str, tuple[Runtime, asyncio.Task[None]]] = {}

    async def run(self) -> None:
        try:
            while True:
                self._rescan()
                await asyncio.sleep(self.rescan_every)
        finally:
            for _, task in self._streams.values():
                task.cancel()
            await asyncio.gather(*(t for _, t in self._streams.values()), return_exceptions=True)

    def _rescan(self) -> None:
        ready = _ready_hosts(self.hosts)
        for name, (runtime, task) in list(self._streams.items()):
            if name not in ready or self.pool.get(name) is not runtime or task.done():
                task.cancel()
                del self._streams[name]
        for name, host in ready.items():
            if name not in self._streams:
                runtime = self.pool.for_host(host)
                self._streams[name] = (runtime, asyncio.create_task(self._follow(name, runtime)))

    async def _follow(self, host: str, runtime: Runtime) -> None:
        """Enqueue the records of a host's container events; on (re)opening the stream, every
        record placed there, since whatever happened while nobody listened is unknown."""
        with contextlib.suppress(ZunError):
            events = runtime.events(kind_selector("Container"))
            for key in self.placed_on(host):
                self.enqueue(key)
            async for event in events:
                project, name = event.labels.get(LABEL_PROJECT), event.labels.get(LABEL_NAME)
                if project and name:
                    self.enqueue(f"containers/{project}/{name}")
        log.info("engine event stream ended; reopening", extra={"host": host})


class OrphanSweeper:
    def __init__(
        self,
        containers: Records[Container],
        hosts: Records[Host],
        pool: RuntimePool,
        *,
        every: float = 30.0,
        instance: str = "",
    ) -> None:
        self.containers, self.hosts, self.pool, self.every = containers, hosts, pool, every
        self.instance = instance

    async def run(self) -> None:
        while True:
            for host in _ready_hosts(self.hosts).values():
                with contextlib.suppress(ZunError):
                    await self.sweep(self.pool.for_host(host))
            await asyncio.sleep(self.every)

    async def sweep(self, runtime: Runtime) -> list[str]:
        """Remove this installation's containers on the engine that no record owns."""
        known = {c.metadata.uid for c in self.containers.all()}
        ours = {**kind_selector("Container")}
        if self.instance:
            ours[LABEL_INSTANCE] = self.instance
        removed = []
        for state in await runtime.list_containers(ours):
            if state.labels.get(LABEL_UID) not in known:
                log.warning(
                    "removing orphan container",
                    extra={"container": state.name, "host": runtime.name},
                )
                await runtime.remove(state.id)
                removed.append(state.name)
        return removed
