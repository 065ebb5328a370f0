"""Placement: turns records into scheduler candidates and keeps decisions from racing.

Decisions are made one at a time (a lock), and a decision counts against its host until the
placed record comes back through the informer, so two workers never fill the same room.
Volumes are host-local: a Container that mounts a bound Volume goes to the Volume's host, and
an unbound Volume is bound (in its status, compare-and-swap) to the host its first user gets.
"""

from __future__ import annotations

import asyncio

from zun_controller.engine.client import Records
from zun_controller.errors import ConflictError
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.network import Volume
from zun_controller.reconcilers.host import allocation
from zun_controller.reconcilers.scheduler import Candidate, Decision, Request, schedule


class Placement:
    def __init__(
        self, containers: Records[Container], hosts: Records[Host], volumes: Records[Volume]
    ) -> None:
        self.containers = containers
        self.hosts = hosts
        self.volumes = volumes
        self._lock = asyncio.Lock()
        self._reserved: dict[str, tuple[str, float, int]] = {}  # key -> (host, cpu, memory)

    def _prune(self) -> None:
        """Reservations whose placement the informer cache now shows count there instead."""
        for key in list(self._reserved):
            obj = self.containers.get(key)
            if obj is None or obj.status.host:
                del self._reserved[key]

    def _candidates(self) -> list[Candidate]:
        self._prune()
        out = []
        for host in self.hosts.all():
            usage, count = allocation(self.containers, host.name)
            extra = [r for r in self._reserved.values() if r[0] == host.name]
            out.append(
                Candidate(
                    name=host.name,
                    labels=host.metadata.labels,
                    ready=host.status.is_true("Ready"),
                    schedulable=host.spec.schedulable,
                    cpu=host.status.capacity.cpu,
                    memory=host.status.capacity.memory,
                    allocated_cpu=usage.cpu + sum(r[1] for r in extra),
                    allocated_memory=usage.memory + sum(r[2] for r in extra),
                    containers=count + len(extra),
                    runtimes=frozenset(host.status.runtimes),
                    runtime=host.spec.runtime,
                )
            )
        return out

    def _required_host(self, obj: Container) -> tuple[str | None, str]:
        """The host the container's bound volumes pin it to, or why none can hold them."""
        bound: set[str] = set()
        for mount in obj.spec.volumes:
            volume = self.volumes.get_by_name(mount.volume, obj.project)
            if volume is not None and (volume.status.host or volume.spec.host):
                bound.add(volume.status.host or volume.spec.host or "")
        if len(bound) > 1:
            return None, f"its volumes live on different hosts: {sorted(bound)}"
        return (bound.pop() if bound else None), ""

    async def place(self, obj: Container) -> Decision:
        required, conflict = self._required_host(obj)
        if conflict:
            return Decision(None, conflict)
        request = Request(
            cpu=obj.spec.resources.cpu or 0.0,
            memory=obj.spec.resources.memory or 0,
            selector=obj.spec.host_selector or None,
            required_host=required,
            runtime=obj.spec.runtime,
        )
        async with self._lock:
            decision = schedule(self._candidates(), request)
            if decision.host:
                self._reserved[obj.key] = (decision.host, request.cpu, request.memory)
            return decision

    async def bind_volume(self, volume: Volume, host: str) -> None:
        if (volume.status.host or volume.spec.host) == host:
            return
        if volume.status.host and volume.status.host != host:
            raise ConflictError(f"Volume {volume.name} lives on {volume.status.host}, not {host}")
        before = volume.status.model_copy(deep=True)
        volume.status.host = host
        await self.volumes.write_status(volume, before)
