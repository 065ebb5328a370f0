"""Manager: runs informers, controllers and extra tasks; elects a leader; serves health.

Informers run on every replica (so a standby has a warm cache); controllers and tasks marked
`leader_only` run only while this replica holds the lease. Losing the lease stops everything
and `run` raises `LeadershipLost`: the process exits and its supervisor restarts it, as
controller-runtime does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from zun_controller.engine.controller import Controller, Observer
from zun_controller.engine.health import HealthServer
from zun_controller.engine.informer import Informer
from zun_controller.engine.leader import LeaderElector
from zun_controller.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    leader_only: bool = True


class Manager:
    def __init__(
        self,
        *,
        metrics: Metrics,
        elector: LeaderElector | None = None,
        health_host: str = "127.0.0.1",
        health_port: int | None = 0,
        observer: Observer | None = None,
    ) -> None:
        self.metrics = metrics
        self.elector = elector
        self.observer = observer
        self.informers: list[Informer[Any]] = []
        self.controllers: list[Controller] = []
        self.tasks: list[Task] = []
        #: set once the health endpoint listens (its port is known) and informers start
        self.serving = asyncio.Event()
        self.health = (
            HealthServer(
                ready=self.ready, metrics=metrics.render, host=health_host, port=health_port
            )
            if health_port is not None
            else None
        )

    def add_informer(self, informer: Informer[Any]) -> None:
        self.informers.append(informer)

    def add_controller(self, controller: Controller) -> None:
        if controller.informer not in self.informers:
            self.add_informer(controller.informer)
        controller.observer = self.observer
        self.controllers.append(controller)

    def add_task(self, task: Task) -> None:
        self.tasks.append(task)

    def ready(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; raises `LeadershipLost` when the lease slips away."""
        if self.health:
            await self.health.start()
        self.serving.set()
        always = [asyncio.create_task(i.run()) for i in self.informers]
        always += [
            asyncio.create_task(t.run(), name=t.name) for t in self.tasks if not t.leader_only
        ]
        try:
            await self._until_stopped(stop, always)
        finally:
            for task in always:
                task.cancel()
            await asyncio.gather(*always, return_exceptions=True)
            if self.health:
                await self.health.stop()

    async def _until_stopped(self, stop: asyncio.Event, always: list[asyncio.Task[None]]) -> None:
        stopper = asyncio.create_task(stop.wait())
        acting = asyncio.create_task(self._act(stop))
        try:
            done, _ = await asyncio.wait(
                {stopper, acting, *always}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not stopper and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopper.cancel()
            acting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acting

    async def _act(self, stop: asyncio.Event) -> None:
        if self.elector is None:
            await self._lead(stop)
        else:
            await self.elector.run(lambda: self._lead(stop))

    async def _lead(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(i.synced.wait() for i in self.informers))
        log.info("starting controllers", extra={"controllers": [c.name for c in self.controllers]})
        work = [asyncio.create_task(c.run(), name=c.name) for c in self.controllers]
        work += [asyncio.create_task(t.run(), name=t.name) for t in self.tasks if t.leader_only]
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({stopper, *work}, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                log.error("a leader task ended; stopping", extra={"task": task.get_name()})
                task.result()
        finally:
            stopper.cancel()
            for controller in self.controllers:  # not stop.is_set(): the lease is lost
                controller.drain_on_stop = stop.is_set()
            for task in work:
                task.cancel()
            await asyncio.gather(*work, return_exceptions=True)
