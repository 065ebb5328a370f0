"""Host reconciler: probes each engine, reports reachability, version, capacity and allocation.

A Host with Containers placed on it is held on delete (the in-use rule, reconcilers/inuse.py):
it keeps being probed, so those Containers can still be removed from its engine, and goes
once none is placed there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.errors import ZunError
from zun_controller.models.container import Container
from zun_controller.models.host import Host, Usage
from zun_controller.reconcilers.inuse import InUseGuard, User
from zun_controller.reconcilers.runtimes import RuntimePool

PROBE_TIMEOUT = 10.0


def allocation(containers: Records[Container], host: str) -> tuple[Usage, int]:
    """cpu and memory asked by the Containers placed on `host`, and how many there are."""
    usage, count = Usage(), 0
    for obj in containers.all(lambda c: c.status.host == host):
        usage.cpu += obj.spec.resources.cpu or 0.0
        usage.memory += obj.spec.resources.memory or 0
        count += 1
    return usage, count


def host_users(containers: Records[Container]) -> Callable[[Host], list[User]]:
    def users(host: Host) -> list[User]:
        return [User.of(c) for c in containers.all(lambda c: c.status.host == host.name)]

    return users


class HostReconciler:
    def __init__(
        self,
        hosts: Records[Host],
        containers: Records[Container],
        pool: RuntimePool,
        *,
        probe_every: float = 10.0,
    ) -> None:
        self.hosts = hosts
        self.containers = containers
        self.pool = pool
        self.probe_every = probe_every
        self.guard = InUseGuard(hosts, host_users(containers))

    async def reconcile(self, key: str) -> Result:
        host = self.hosts.get(key)
        if host is None:
            await self.pool.drop(key.split("/", 1)[1])
            return Result()
        host = await self.guard.protect(host)
        before = host.status.model_copy(deep=True)
        await self._probe(host)
        host.status.allocated, host.status.containers = allocation(self.containers, host.name)
        host.status.observed_generation = host.metadata.generation
        host = await self.hosts.write_status(host, before)
        if host.metadata.deletion_timestamp:
            return await self.guard.finalize(host)
        return Result(requeue_after=self.probe_every)

    async def _probe(self, host: Host) -> None:
        status = host.status
        runtime = self.pool.for_host(host)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                info = await runtime.info()
        except (ZunError, TimeoutError) as exc:
            status.reachable = False
            status.phase = "NotReady"
            status.set_condition("Ready", False, "Unreachable", f"{host.spec.endpoint}: {exc}")
            return
        status.reachable = True
        status.version = info.version
        status.api_version = info.api_version
        status.runtimes = sorted(info.runtimes)
        status.capacity = Usage(
            cpu=host.spec.capacity.cpu if host.spec.capacity.cpu is not None else info.cpus,
            memory=(
                host.spec.capacity.memory if host.spec.capacity.memory is not None else info.memory
            ),
        )
        status.phase = "Ready"
        status.set_condition("Ready", True, "EngineAnswers", f"Docker {info.version}")
