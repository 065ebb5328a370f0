"""Container reconciler: one record, one engine container, converged level by level.

Each pass: finalizer first; placement (persisted in status before anything is created, so a
crash cannot place one record on two hosts); find our container by the record's uid label;
recreate it if its config hash differs, update cpu/memory in place; pull its image first as
the pull policy says (container_pull.py), before a stale container is removed, so an image that
cannot be pulled leaves the old one running; create it if missing (a
deterministic name makes a repeated create after a crash a conflict, and the container found
is adopted); restart it once if spec.restartedAt is newer than status.restartedAt; drive it
to the desired state (Running, Stopped, Paused) honouring the restart policy; then report what
the engine says. Deleting the record removes the container first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import replace

from zun_controller.drivers.runtime.base import (
    ContainerConfig,
    ContainerState,
    Runtime,
    carries,
)
from zun_controller.engine.client import Records
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.reconciler import Result
from zun_controller.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    TransientError,
    ZunError,
)
from zun_controller.metrics import Metrics
from zun_controller.models.base import (
    LABEL_CONFIG_HASH,
    LABEL_INSTANCE,
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PROJECT,
    LABEL_UID,
)
from zun_controller.models.container import (
    Container,
    ContainerPhase,
    ContainerStatus,
    DesiredState,
)
from zun_controller.models.host import Host
from zun_controller.models.network import Network, Volume
from zun_controller.reconcilers.container_config import (
    EngineObjects,
    desired_config,
    is_current,
)
from zun_controller.reconcilers.container_events import ContainerEvents
from zun_controller.reconcilers.container_pull import ImagePuller
from zun_controller.reconcilers.container_state import apply_state, observe, phase_of, restart
from zun_controller.reconcilers.engine_names import (
    EngineNames,
    Wanted,
    default_network_wanted,
    network_wanted,
    volume_wanted,
)
from zun_controller.reconcilers.placement import Placement
from zun_controller.reconcilers.runtimes import RuntimePool
from zun_controller.reconcilers.waiting import Waiting

log = logging.getLogger(__name__)
FINALIZER = "zun.openstack.org/runtime"
#: seconds between looks at a name held by an object that is not ours (e.g. an orphan the
#: sweeper removes, or someone else's that an operator moves away)
CONFLICT_RETRY_S = 15.0
#: the labels that make an engine container a record's own
_IDENTITY = (LABEL_MANAGED_BY, LABEL_KIND, LABEL_PROJECT, LABEL_NAME, LABEL_UID, LABEL_INSTANCE)


def _identity(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: labels[k] for k in _IDENTITY if k in labels}


class ContainerReconciler:
    def __init__(
        self,
        containers: Records[Container],
        hosts: Records[Host],
        networks: Records[Network],
        volumes: Records[Volume],
        pool: RuntimePool,
        *,
        stop_grace: float = 10.0,
        recorder: EventRecorder | None = None,
        metrics: Metrics | None = None,
        instance: str = "",
        puller: ImagePuller | None = None,
    ) -> None:
        self.instance = instance
        self.puller = puller or ImagePuller(recorder=recorder)
        self.containers = containers
        self.hosts = hosts
        self.networks = networks
        self.volumes = volumes
        self.pool = pool
        self.stop_grace = stop_grace
        self.placement = Placement(containers, hosts, volumes)
        self.events = ContainerEvents(recorder, metrics)
        #: default networks known to exist, per host: not looked up again for every create
        self._networks_seen: set[tuple[str, str]] = set()
        #: which engine names hold the networks and volumes of records, per host
        self.names = EngineNames()

    async def reconcile(self, key: str) -> Result:
        obj = self.containers.get(key)
        if obj is None:
            return Result()
        if obj.metadata.deletion_timestamp:
            return await self._finalize(obj)
        if FINALIZER not in obj.metadata.finalizers:
            obj.metadata.finalizers.append(FINALIZER)
            obj = await self.containers.update(obj)
        return await self._converge_and_report(obj)

    async def _converge_and_report(self, obj: Container) -> Result:
        before = obj.status.model_copy(deep=True)
        try:
            obj, before = await self._place(obj, before)
            await self._converge(obj)
        except Waiting as wait:
            obj.status.set_condition("Ready", False, wait.reason, wait.message)
            await self.containers.write_status(obj, before)
            return Result(requeue_after=wait.after)
        except PermanentError as exc:
            self.events.failed(obj, exc.reason, exc.message)
            obj.status.phase = ContainerPhase.ERROR
            obj.status.set_condition("Ready", False, exc.reason, exc.message)
            await self.containers.write_status(obj, before)
            raise
        except TransientError as exc:
            obj.status.set_condition("Ready", False, "RuntimeUnavailable", str(exc))
            await self.containers.write_status(obj, before)
            raise
        obj.status.observed_generation = obj.metadata.generation
        await self.containers.write_status(obj, before)
        return Result()

    async def _place(
        self, obj: Container, before: ContainerStatus
    ) -> tuple[Container, ContainerStatus]:
        if obj.status.host:
            return obj, before
        decision = await self.placement.place(obj)
        if decision.host is None:
            obj.status.phase = ContainerPhase.PENDING
            self.events.unschedulable(obj, decision.reason)
            raise Waiting("Unschedulable", decision.reason, after=5.0)
        obj.status.host = decision.host
        obj.status.phase = ContainerPhase.CREATING
        obj.status.set_condition("Scheduled", True, "Placed", f"on host {decision.host}")
        obj = await self.containers.write_status(obj)
        self.events.scheduled(obj)
        return obj, obj.status.model_copy(deep=True)

    def _runtime(self, obj: Container) -> Runtime:
        host = self.hosts.get_by_name(obj.status.host or "")
        if host is None or not host.status.is_true("Ready"):
            why = "is not registered" if host is None else "is not ready"
            raise Waiting("RuntimeUnavailable", f"host {obj.status.host} {why}")
        return self.pool.for_host(host)

    async def _converge(self, obj: Container) -> None:
        runtime = self._runtime(obj)
        needs = self._needs(obj)
        objects = await self._engine_objects(runtime, obj, needs)
        current, config = await self._current(runtime, obj, objects)
        fresh = current is None
        if current is None:
            await self._prerequisites(runtime, obj, needs, objects)
            try:
                current = await self._create(runtime, config)
            except NotFoundError:
                self._networks_seen.discard((obj.status.host or "", config.networks[0]))
                self.names.forget(obj.status.host or "")
                raise TransientError(f"creating {config.name}: a network vanished") from None
            self.events.created(obj, current)
        elif (current.cpus, current.memory) != (config.cpus, config.memory):
            await runtime.update_resources(current.id, config.cpus, config.memory)
        if fresh or obj.status.image_id is None or obj.status.container_id != current.id:
            obj.status.image_id = await self.puller.image_id(runtime, obj, current)
        if obj.restart_pending():
            current = await self._restart(runtime, obj, current, fresh)
        before = current
        try:
            current = await apply_state(runtime, obj, current, self.stop_grace)
        except ZunError:
            # the change did not happen: the phase says what the engine does (only the phase:
            # the Ready condition still says why it was stopped, which decides a restart)
            obj.status.phase = phase_of(obj, before)
            raise
        self.events.state_changed(obj, before, current)
        observe(obj, current)

    async def _restart(
        self, runtime: Runtime, obj: Container, current: ContainerState, fresh: bool
    ) -> ContainerState:
        """Restart once for spec.restartedAt and record it in status, which the pass writes at
        its end: a crash or a failed write before then restarts once more, never in a loop. A
        container just created, or one the spec wants stopped or paused, needs no restart."""
        if not fresh and obj.spec.state is DesiredState.RUNNING:
            current = await restart(runtime, current, self.stop_grace)
            self.events.restarted(obj, current)
        obj.status.restarted_at = obj.spec.restarted_at
        return current

    def _config(self, obj: Container, objects: EngineObjects, name: str | None) -> ContainerConfig:
        host = self.hosts.get_by_name(obj.status.host or "")
        runtime = host.spec.runtime if host is not None else None
        config = desired_config(obj, objects, name=name, host_runtime=runtime)
        if self.instance:
            config = replace(config, labels={**config.labels, LABEL_INSTANCE: self.instance})
        return config

    async def _current(
        self, runtime: Runtime, obj: Container, objects: EngineObjects
    ) -> tuple[ContainerState | None, ContainerConfig]:
        """Our container (our uid) if it matches the config, under its own name (an upgrade
        renames nothing), with that config; extras and stale ones are removed. None and the
        config of a new container when there is none."""
        found = await runtime.list_containers({LABEL_UID: obj.metadata.uid or ""})
        keep: tuple[ContainerState, ContainerConfig] | None = None
        for candidate in found:
            config = self._config(obj, objects, candidate.name)
            if keep is None and is_current(candidate.labels.get(LABEL_CONFIG_HASH), obj):
                keep = candidate, config
        if keep is None:  # a create is coming: pull first, before removing a stale one
            await self.puller.ensure(runtime, obj, replacing=bool(found))
        for other in found:
            if keep is None or other is not keep[0]:
                log.info("removing container", extra={"key": obj.key, "id": other.id[:12]})
                await runtime.remove(other.id)
        return keep or (None, self._config(obj, objects, None))

    def _needs(self, obj: Container) -> tuple[list[Wanted], list[Wanted]]:
        """The networks and volumes (in spec order) the container is to be on."""
        project = obj.project or ""
        networks = [
            network_wanted(project, n, self.networks.get_by_name(n, project))
            for n in obj.spec.networks
        ] or [default_network_wanted(project)]
        volumes = [
            volume_wanted(project, m.volume, self.volumes.get_by_name(m.volume, project))
            for m in obj.spec.volumes
        ]
        return networks, volumes

    async def _engine_objects(
        self, runtime: Runtime, obj: Container, needs: tuple[list[Wanted], list[Wanted]]
    ) -> EngineObjects:
        host = obj.status.host or ""
        networks = tuple([await self.names.get(host, runtime, w) for w in needs[0]])
        volumes = {
            m.volume: await self.names.get(host, runtime, w)
            for m, w in zip(obj.spec.volumes, needs[1], strict=True)
        }
        return EngineObjects(networks, volumes)

    async def _prerequisites(
        self,
        runtime: Runtime,
        obj: Container,
        needs: tuple[list[Wanted], list[Wanted]],
        objects: EngineObjects,
    ) -> None:
        """Make the networks and volumes; one whose name is taken by an object that is not
        ours is a NameConflict, and nothing is created."""
        try:
            await self._ensure_networks(runtime, obj, needs[0], objects.networks)
            await self._ensure_volumes(runtime, obj, needs[1], objects)
        except ConflictError as exc:
            self.names.forget(obj.status.host or "")
            raise Waiting("NameConflict", str(exc), after=CONFLICT_RETRY_S) from None

    async def _ensure_networks(
        self, runtime: Runtime, obj: Container, needs: list[Wanted], names: tuple[str, ...]
    ) -> None:
        project, host = obj.project or "", obj.status.host or ""
        for net, wanted, name in zip(obj.spec.networks or [""], needs, names, strict=True):
            network = self.networks.get_by_name(net, project) if net else None
            if net and network is None:
                raise Waiting("NetworkNotFound", f"spec.networks: Network {net!r} does not exist")
            async with self.pool.guard(host, name):
                if network is not None:
                    await runtime.ensure_network(
                        name, wanted.labels, internal=network.spec.internal
                    )
                elif (host, name) not in self._networks_seen:
                    await runtime.ensure_network(name, wanted.labels)
                    self._networks_seen.add((host, name))

    async def _ensure_volumes(
        self, runtime: Runtime, obj: Container, needs: list[Wanted], objects: EngineObjects
    ) -> None:
        project, host = obj.project or "", obj.status.host or ""
        for mount, wanted in zip(obj.spec.volumes, needs, strict=True):
            volume = self.volumes.get_by_name(mount.volume, project)
            if volume is None:
                raise Waiting(
                    "VolumeNotFound", f"spec.volumes: Volume {mount.volume!r} does not exist"
                )
            await self.placement.bind_volume(volume, host)
            name = objects.volumes[mount.volume]
            async with self.pool.guard(host, name):
                await runtime.ensure_volume(name, wanted.labels)

    async def _create(self, runtime: Runtime, config: ContainerConfig) -> ContainerState:
        """Create; a name already taken is adopted when the container there is this record's
        (a create repeated after a crash), else a NameConflict: never removed, never used."""
        try:
            return await runtime.create(config)
        except ConflictError:
            existing = await runtime.inspect(config.name)
            if existing is None:
                raise
            if carries(existing.labels, _identity(config.labels)):
                return existing
            raise Waiting(
                "NameConflict",
                f"a container named {config.name} exists and is not this record's",
                after=CONFLICT_RETRY_S,
            ) from None

    async def _finalize(self, obj: Container) -> Result:
        if FINALIZER not in obj.metadata.finalizers:
            return Result()
        if obj.status.phase != ContainerPhase.DELETING:
            before = obj.status.model_copy(deep=True)
            obj.status.phase = ContainerPhase.DELETING
            obj = await self.containers.write_status(obj, before)
        host = self.hosts.get_by_name(obj.status.host or "") if obj.status.host else None
        if host is not None:
            runtime = self.pool.for_host(host)
            for found in await runtime.list_containers({LABEL_UID: obj.metadata.uid or ""}):
                await runtime.stop(found.id, self.stop_grace)
                await runtime.remove(found.id)
                self.events.killed(obj, found)
        obj.metadata.finalizers = [f for f in obj.metadata.finalizers if f != FINALIZER]
        with contextlib.suppress(NotFoundError):
            await self.containers.update(obj)
        self.puller.forget(obj)
        return Result()
