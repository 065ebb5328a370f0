"""Network and Volume reconcilers: per-project engine networks and volumes, with finalizers
that keep them while Containers use them (the in-use rule, reconcilers/inuse.py: a Network is
used by the Containers naming it in `spec.networks`, a Volume by those mounting it; an engine
that still refuses to remove one holds it the same way)."""

from __future__ import annotations

from collections.abc import Callable

from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.errors import ConflictError
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.network import Network, Volume
from zun_controller.reconcilers.engine_names import Wanted, network_wanted, resolve, volume_wanted
from zun_controller.reconcilers.inuse import RECHECK, InUseGuard, User
from zun_controller.reconcilers.naming import labels_for
from zun_controller.reconcilers.runtimes import RuntimePool

NETWORK_FINALIZER = "zun.openstack.org/network"
VOLUME_FINALIZER = "zun.openstack.org/volume"
#: seconds between looks at a name held by an engine object that is not ours
CONFLICT_RETRY_S = 15.0


def network_users(containers: Records[Container]) -> Callable[[Network], list[User]]:
    def users(net: Network) -> list[User]:
        def joins(c: Container) -> bool:
            return c.project == net.project and net.name in c.spec.networks

        return [User.of(c) for c in containers.all(joins)]

    return users


def volume_users(containers: Records[Container]) -> Callable[[Volume], list[User]]:
    def users(vol: Volume) -> list[User]:
        def mounts(c: Container) -> bool:
            return c.project == vol.project and any(m.volume == vol.name for m in c.spec.volumes)

        return [User.of(c) for c in containers.all(mounts)]

    return users


class NetworkReconciler:
    def __init__(
        self,
        networks: Records[Network],
        hosts: Records[Host],
        pool: RuntimePool,
        containers: Records[Container],
    ) -> None:
        self.networks, self.hosts, self.pool = networks, hosts, pool
        self.guard = InUseGuard(
            networks, network_users(containers), NETWORK_FINALIZER, not_ready=True
        )

    def _ready_hosts(self) -> list[Host]:
        return list(self.hosts.all(lambda h: h.status.is_true("Ready")))

    async def reconcile(self, key: str) -> Result:
        net = self.networks.get(key)
        if net is None:
            return Result()
        wanted = network_wanted(net.project or "", net.name, net)
        if net.metadata.deletion_timestamp:
            return await self._delete(net, wanted)
        net = await self.guard.protect(net)
        before = net.status.model_copy(deep=True)
        try:
            for host in self._ready_hosts():
                net.status.hosts[host.name] = await self._ensure(host, wanted, net.spec.internal)
        except ConflictError as exc:  # the name is taken by a network that is not ours
            net.status.phase = "Pending"
            net.status.set_condition("Ready", False, "NameConflict", str(exc))
            await self.networks.write_status(net, before)
            return Result(requeue_after=CONFLICT_RETRY_S)
        net.status.phase = "Ready"
        net.status.observed_generation = net.metadata.generation
        net.status.set_condition("Ready", True, "Created", f"on {len(net.status.hosts)} host(s)")
        await self.networks.write_status(net, before)
        return Result()

    async def _ensure(self, host: Host, wanted: Wanted, internal: bool) -> str:
        runtime = self.pool.for_host(host)
        name = await resolve(runtime, wanted)
        async with self.pool.guard(host.name, name):
            state = await runtime.ensure_network(name, wanted.labels, internal=internal)
        return state.id

    async def _delete(self, net: Network, wanted: Wanted) -> Result:
        """Remove our networks (found by the record's labels, whatever their name)."""
        if NETWORK_FINALIZER not in net.metadata.finalizers:
            return Result()
        if await self.guard.held(net):
            return Result(requeue_after=RECHECK)
        try:
            for host in self._ready_hosts():
                runtime = self.pool.for_host(host)
                for found in await runtime.list_networks(wanted.labels):
                    await runtime.remove_network(found.name, wanted.labels)
        except ConflictError as exc:
            before = net.status.model_copy(deep=True)
            net.status.set_condition("Ready", False, "InUse", str(exc))
            await self.networks.write_status(net, before)
            return Result(requeue_after=RECHECK)
        await self.guard.release(net)
        return Result()


class VolumeReconciler:
    def __init__(
        self,
        volumes: Records[Volume],
        containers: Records[Container],
        hosts: Records[Host],
        pool: RuntimePool,
    ) -> None:
        self.volumes, self.containers, self.hosts, self.pool = volumes, containers, hosts, pool
        self._users_of = volume_users(containers)
        self.guard = InUseGuard(volumes, self._users_of, VOLUME_FINALIZER, not_ready=True)

    def _users(self, vol: Volume) -> list[str]:
        return sorted(u.name for u in self._users_of(vol))

    async def reconcile(self, key: str) -> Result:
        vol = self.volumes.get(key)
        if vol is None:
            return Result()
        if vol.metadata.deletion_timestamp:
            return await self._delete(vol)
        vol = await self.guard.protect(vol)
        before = vol.status.model_copy(deep=True)
        vol.status.used_by = self._users(vol)
        vol.status.host = vol.status.host or vol.spec.host
        vol.status.observed_generation = vol.metadata.generation
        host = self.hosts.get_by_name(vol.status.host) if vol.status.host else None
        if host is None or not host.status.is_true("Ready"):
            vol.status.phase = "Pending"
            why = "waits for its first Container" if not vol.status.host else "host not ready"
            vol.status.set_condition(
                "Ready", False, "Unbound" if not vol.status.host else "HostNotReady", why
            )
        else:
            try:
                vol.status.mountpoint = await self._ensure(host, vol)
            except ConflictError as exc:  # the name is taken by a volume that is not ours
                vol.status.phase = "Pending"
                vol.status.set_condition("Ready", False, "NameConflict", str(exc))
                await self.volumes.write_status(vol, before)
                return Result(requeue_after=CONFLICT_RETRY_S)
            vol.status.phase = "InUse" if vol.status.used_by else "Available"
            vol.status.set_condition("Ready", True, "Created", f"on host {host.name}")
        await self.volumes.write_status(vol, before)
        return Result()

    async def _ensure(self, host: Host, vol: Volume) -> str | None:
        """Make (or find) the engine volume; its mount point."""
        runtime, wanted = self.pool.for_host(host), volume_wanted(vol.project or "", vol.name, vol)
        name = await resolve(runtime, wanted)
        async with self.pool.guard(host.name, name):
            state = await runtime.ensure_volume(name, wanted.labels)
        return state.mountpoint

    async def _delete(self, vol: Volume) -> Result:
        if VOLUME_FINALIZER not in vol.metadata.finalizers:
            return Result()
        if await self.guard.held(vol):
            return Result(requeue_after=RECHECK)
        before = vol.status.model_copy(deep=True)
        host = self.hosts.get_by_name(vol.status.host) if vol.status.host else None
        if host is not None:
            runtime, labels = self.pool.for_host(host), labels_for(vol)
            try:
                for found in await runtime.list_volumes(labels):  # ours, whatever their name
                    await runtime.remove_volume(found.name, labels)
            except ConflictError as exc:
                vol.status.set_condition("Ready", False, "InUse", str(exc))
                await self.volumes.write_status(vol, before)
                return Result(requeue_after=RECHECK)
        await self.guard.release(vol)
        return Result()
