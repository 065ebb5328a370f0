"""`StatsSampler`: every few seconds, read each running Container record's cpu and memory
from its engine (`Runtime.stats`) into `zun_container_cpu_ratio` and
`zun_container_memory_bytes`, labelled by project and record name, or by the record's uid
alone unless the process's `Metrics` may name tenants (bounded: never container ids). Series
of records that are gone or no longer running are dropped. Leader-only."""

from __future__ import annotations

import asyncio
import logging

from zun_controller.engine.client import Records
from zun_controller.errors import ZunError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container, ContainerPhase
from zun_controller.models.host import Host
from zun_controller.reconcilers.runtimes import RuntimePool

log = logging.getLogger(__name__)
_SAMPLED = (ContainerPhase.RUNNING, ContainerPhase.PAUSED)


class StatsSampler:
    def __init__(
        self,
        containers: Records[Container],
        hosts: Records[Host],
        pool: RuntimePool,
        metrics: Metrics,
        *,
        every: float = 15.0,
    ) -> None:
        self.containers, self.hosts, self.pool = containers, hosts, pool
        self.metrics, self.every = metrics, every
        self._series: set[tuple[str, str]] = set()

    async def run(self) -> None:
        try:
            while True:
                await self.sample()
                await asyncio.sleep(self.every)
        finally:
            self._drop(set(self._series))

    async def sample(self) -> None:
        """One pass over the cache: set the gauges of running records, drop the others."""
        seen: set[tuple[str, str]] = set()
        for obj in self.containers.all(lambda c: c.status.phase in _SAMPLED):
            if await self._sample_one(obj):
                seen.add(self._labels(obj))
        self._drop(self._series - seen)
        self._series = seen

    async def _sample_one(self, obj: Container) -> bool:
        host = self.hosts.get_by_name(obj.status.host or "")
        if host is None or not obj.status.container_id:
            return False
        try:
            stats = await self.pool.for_host(host).stats(obj.status.container_id)
        except ZunError as exc:
            log.debug("no stats", extra={"key": obj.key, "error": str(exc)})
            return False
        labels = self._labels(obj)
        self.metrics.container_cpu.labels(*labels).set(stats.cpu_percent / 100.0)
        self.metrics.container_memory.labels(*labels).set(stats.memory_bytes)
        return True

    def _labels(self, obj: Container) -> tuple[str, str]:
        return self.metrics.record_labels(obj.project or "", obj.name, obj.metadata.uid or "")

    def _drop(self, series: set[tuple[str, str]]) -> None:
        for labels in series:
            self.metrics.container_cpu.remove(*labels)
            self.metrics.container_memory.remove(*labels)
