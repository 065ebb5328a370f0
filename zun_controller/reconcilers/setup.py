"""Wires the reference implementation's kinds into a manager: informers, controllers, the
mappings between kinds, and the engine tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from zun_controller.drivers.runtime.base import RuntimeFactory
from zun_controller.engine.client import Records
from zun_controller.engine.controller import Controller
from zun_controller.engine.convergence import RecordCounter, track_convergence
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.informer import Cached, Informer
from zun_controller.engine.manager import Manager, Task
from zun_controller.engine.reconciler import Reconciler
from zun_controller.errors import InvalidError
from zun_controller.metrics import Metrics
from zun_controller.models.base import Resource
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.network import Network, Volume
from zun_controller.models.pullsecret import PullSecret
from zun_controller.reconcilers.container import ContainerReconciler
from zun_controller.reconcilers.container_pull import ImagePuller, PullSettings
from zun_controller.reconcilers.host import HostReconciler
from zun_controller.reconcilers.instrumented import instrumented
from zun_controller.reconcilers.inuse import deleting
from zun_controller.reconcilers.network import NetworkReconciler, VolumeReconciler
from zun_controller.reconcilers.pull_secret import PullSecretReconciler
from zun_controller.reconcilers.runtime_watch import OrphanSweeper, RuntimeEvents
from zun_controller.reconcilers.runtimes import RuntimePool
from zun_controller.reconcilers.stats_sampler import StatsSampler
from zun_controller.store.codec import load
from zun_controller.store.records import RecordStore

R = TypeVar("R", bound=Resource)


def _any_change(old: Cached | None, new: Cached | None) -> bool:
    return True


def cached_field(cached: Cached | None, *path: str) -> object:
    """A field of a cached raw record (None when absent or not a record): for mappers, which
    see events of records that may not validate."""
    if cached is None:
        return None
    try:
        value: object = load(cached.value)
    except InvalidError:
        return None
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def pull_secret_names(*cached: Cached | None, path: tuple[str, ...] = ("spec",)) -> set[str]:
    """The PullSecret names `imagePullSecrets` holds at `path` of cached raw records (a
    Container's spec, or each container of an Application's template)."""
    names: set[str] = set()
    for one in cached:
        specs = cached_field(one, *path)
        for spec in specs if isinstance(specs, list) else [specs]:
            refs = spec.get("imagePullSecrets") if isinstance(spec, dict) else None
            for ref in refs if isinstance(refs, list) else []:
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    names.add(ref["name"])
    return names


class Closable(Protocol):
    async def close(self) -> None: ...


async def close_on_stop(pool: Closable) -> None:
    """A manager task that only closes `pool` (its engine clients) when the manager stops."""
    try:
        await asyncio.Event().wait()
    finally:
        await pool.close()


def _records(store: RecordStore, cls: type[R], metrics: Metrics, resync: float) -> Records[R]:
    return Records(store, Informer(store, cls, metrics=metrics, resync_period=resync))


class ControllerSet:
    """What the sets of controllers share: controllers built alike, and their engine client
    pool closed when the manager stops."""

    _store: RecordStore
    _metrics: Metrics
    _workers: int
    pool: Closable

    def _controller(self, name: str, reconciler: Reconciler, informer: Informer[Any]) -> Controller:
        return Controller(
            name,
            reconciler,
            informer,
            store=self._store,
            metrics=self._metrics,
            workers=self._workers,
        )

    async def _close_pool_on_stop(self) -> None:
        await close_on_stop(self.pool)


class RuntimeControllers(ControllerSet):
    """Everything of the reference implementation, registered on one manager."""

    pool: RuntimePool

    def __init__(
        self,
        manager: Manager,
        store: RecordStore,
        metrics: Metrics,
        factory: RuntimeFactory,
        *,
        workers: int = 4,
        resync_period: float = 60.0,
        stop_grace: float = 10.0,
        probe_every: float = 10.0,
        instance: str = "",
        recorder: EventRecorder | None = None,
        stats_every: float = 15.0,
        pull: PullSettings | None = None,
    ) -> None:
        self.pool = RuntimePool(instrumented(factory, metrics, store.fence))
        self.recorder = recorder or EventRecorder(store, metrics)
        self.containers = _records(store, Container, metrics, resync_period)
        self.hosts = _records(store, Host, metrics, resync_period)
        self.networks = _records(store, Network, metrics, resync_period)
        self.volumes = _records(store, Volume, metrics, resync_period)
        self.pull_secrets = _records(store, PullSecret, metrics, resync_period)
        puller = ImagePuller(self.pull_secrets, self.recorder, **(pull or {}))
        self._store, self._metrics, self._workers = store, metrics, workers
        self.container = self._controller(
            "container",
            ContainerReconciler(
                self.containers,
                self.hosts,
                self.networks,
                self.volumes,
                self.pool,
                stop_grace=stop_grace,
                recorder=self.recorder,
                metrics=metrics,
                instance=instance,
                puller=puller,
            ),
            self.containers.informer,
        )
        puller.wake = self.container.queue.add
        self.host = self._controller(
            "host",
            HostReconciler(self.hosts, self.containers, self.pool, probe_every=probe_every),
            self.hosts.informer,
        )
        self.network = self._controller(
            "network",
            NetworkReconciler(self.networks, self.hosts, self.pool, self.containers),
            self.networks.informer,
        )
        self.volume = self._controller(
            "volume",
            VolumeReconciler(self.volumes, self.containers, self.hosts, self.pool),
            self.volumes.informer,
        )
        self.pull_secret_reconciler = PullSecretReconciler(self.pull_secrets, self.containers)
        self.pull_secret = self._controller(
            "pullsecret", self.pull_secret_reconciler, self.pull_secrets.informer
        )
        self._map()
        for controller in (self.host, self.network, self.volume, self.container, self.pull_secret):
            manager.add_controller(controller)
        self.events = events = RuntimeEvents(
            self.hosts, self.pool, self.container.queue.add, self._placed_on
        )
        sweeper = OrphanSweeper(self.containers, self.hosts, self.pool, instance=instance)
        manager.add_task(Task("runtime-events", events.run))
        manager.add_task(Task("orphan-sweeper", sweeper.run))
        manager.add_task(Task("runtime-pool-close", self._close_pool_on_stop))
        manager.add_task(Task("image-pulls-close", lambda: close_on_stop(puller)))
        self._observe(manager, stats_every)

    def _observe(self, manager: Manager, stats_every: float) -> None:
        """Events, convergence latency, record counts and container stats."""
        for records in (self.containers, self.hosts, self.networks, self.volumes):
            track_convergence(records.informer, self._metrics)
        self._metrics.add_record_counts(RecordCounter(manager.informers))
        if recorder_task_needed(manager, self.recorder):
            manager.add_task(Task("event-recorder", self.recorder.run))
        sampler = StatsSampler(
            self.containers, self.hosts, self.pool, self._metrics, every=stats_every
        )
        manager.add_task(Task("stats-sampler", sampler.run))

    def _map(self) -> None:
        self.container.watches(self.hosts.informer, self._containers_of_host, _any_change)
        self.container.watches(self.containers.informer, self._pending_on_delete, _any_change)
        self.network.watches(self.hosts.informer, self._all_networks, _any_change)
        self.volume.watches(self.hosts.informer, self._all_volumes, _any_change)
        self.volume.watches(self.containers.informer, self._volumes_of_container)
        self.host.watches(self.containers.informer, self._deleting_host_of, _any_change)
        self.network.watches(self.containers.informer, self._deleting_networks_of, _any_change)
        self.container.watches(self.pull_secrets.informer, self._containers_of_pull_secret)
        self.pull_secret.watches(
            self.containers.informer, self._deleting_pull_secrets_of, _any_change
        )

    def _containers_of_host(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        host = key.split("/", 1)[1]
        for k in self.containers.informer.list_keys():
            placed = cached_field(self.containers.informer.raw(k), "status", "host")
            if placed in (host, None, ""):
                yield k

    def _placed_on(self, host: str) -> list[str]:
        informer = self.containers.informer
        return [
            k
            for k in informer.list_keys()
            if cached_field(informer.raw(k), "status", "host") == host
        ]

    def _deleting_host_of(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        """The deleting Host a Container was or is placed on (it may be free now)."""
        names = {cached_field(c, "status", "host") for c in (old, new)}
        keys = [f"hosts/{n}" for n in names if isinstance(n, str) and n]
        return [k for k in keys if deleting(self.hosts.informer.raw(k))]

    def _deleting_networks_of(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        project = key.split("/")[1]
        names: set[str] = set()
        for cached in (old, new):
            for net in cached_field(cached, "spec", "networks") or []:  # type: ignore[attr-defined]
                if isinstance(net, str):
                    names.add(net)
        keys = [f"networks/{project}/{n}" for n in names]
        return [k for k in keys if deleting(self.networks.informer.raw(k))]

    def _pending_on_delete(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        if new is not None:
            return
        for k in self.containers.informer.list_keys():
            if not cached_field(self.containers.informer.raw(k), "status", "host"):
                yield k

    def _containers_of_pull_secret(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        """The project's Containers naming the PullSecret: new credentials are tried at once."""
        _, project, name = key.split("/")
        for k in self.containers.informer.list_keys():
            if k.split("/")[1] != project:
                continue
            refs = cached_field(self.containers.informer.raw(k), "spec", "imagePullSecrets")
            if isinstance(refs, list) and any(
                isinstance(r, dict) and r.get("name") == name for r in refs
            ):
                yield k

    def _deleting_pull_secrets_of(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        """The deleting PullSecrets a Container named or names (it may use them no more)."""
        project = key.split("/")[1]
        keys = {f"pullsecrets/{project}/{n}" for n in pull_secret_names(old, new)}
        return [k for k in keys if deleting(self.pull_secrets.informer.raw(k))]

    def _all_networks(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        return self.networks.informer.list_keys()

    def _all_volumes(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        return self.volumes.informer.list_keys()

    def _volumes_of_container(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        project = key.split("/")[1]
        names: set[str] = set()
        for cached in (old, new):
            for mount in cached_field(cached, "spec", "volumes") or []:  # type: ignore[attr-defined]
                if isinstance(mount, dict) and isinstance(mount.get("volume"), str):
                    names.add(mount["volume"])
        return [f"volumes/{project}/{n}" for n in names]


def recorder_task_needed(manager: Manager, recorder: EventRecorder) -> bool:
    """Whether no task of the manager writes this recorder's Events yet."""
    return not any(getattr(t.run, "__self__", None) is recorder for t in manager.tasks)
