"""`DockerOrchestrator`: an Application on a `docker` Cluster as Zun's own records.

Each replica is a Container record `<app>-<revision>-<n>` owned by the Application (owner
reference, labels), placed by the Container reconciler on the Cluster's Hosts
(`spec.hostSelector`); a balancer Container `<app>-lb` publishes the service's ports on
127.0.0.1 and forwards to the ready replicas over the project network (app_docker_lb).
Rolling updates are the controller's (app_docker_plan): new replicas first, within maxSurge;
old ones are drained (out of the balancer, then deleted `drain_seconds` later) only as new
ones pass their health gate, within maxUnavailable, and no ready old one before a new one's
image was pulled (a new replica has a container): an image that cannot be pulled fails the
rollout with every old replica serving.

A bridge network is per host, so the balancer reaches the replicas placed on its own host;
replicas elsewhere are counted but get no traffic (cross-host networking is not done).
Swarm's limit applies here too for now: one container per replica.

Replicas and the balancer are created through admission with the Application's rights
(`Admission.create_child`): they reference it, live in its project and carry only what its
spec carries. A Container counts as the Application's only when it is in the Application's
project and references its uid: an owner reference written in another project never makes
the Application act there.

A replica or balancer name taken by a Container that is not this Application's (made by hand,
by another writer, or by an older Application of the same name) is never adopted: `apply`
raises `AlreadyExistsError` naming that record and its owner, which the Application shows
(condition `Progressing` False, reason `NameConflict`) until the name is free.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta

from zun_controller.admission import Admission
from zun_controller.drivers.orchestrators.base import AppObservation, ClusterInfo, OwnedApp
from zun_controller.drivers.orchestrators.rollout import surge_and_unavailable
from zun_controller.engine.client import Records
from zun_controller.errors import AlreadyExistsError, NotFoundError, PermanentError, TransientError
from zun_controller.models.application import Application, AppTemplate, Cluster, ServiceType
from zun_controller.models.base import ObjectMeta, OwnerReference
from zun_controller.models.container import Container, ContainerSpec, Port
from zun_controller.models.host import Host
from zun_controller.models.ownership import owner_of
from zun_controller.reconcilers import app_docker_lb as lb_config
from zun_controller.reconcilers.app_docker_plan import Replica, hold_until_pulled, plan
from zun_controller.reconcilers.app_docker_status import (
    ANNOTATION_DRAIN,
    EVER,
    LABEL_APP,
    LABEL_REVISION,
    LABEL_ROLE,
    draining,
    now,
    observation,
    ready,
)
from zun_controller.reconcilers.naming import (
    default_network,
    legacy_default_network,
    legacy_name,
    network_name,
)
from zun_controller.reconcilers.runtimes import RuntimePool

DEFAULT_LB_IMAGE = "zun-test/haproxy:2.6"


def _owned_by(obj: Container, app: Application) -> bool:
    if obj.project != app.project:
        return False
    return any(ref.uid == app.metadata.uid for ref in obj.metadata.owner_references)


def name_taken(taken: Container) -> str:
    """Why a replica or balancer cannot be made: its name is another owner's record."""
    owner = owner_of(taken.metadata)
    uids = [r.uid for r in taken.metadata.owner_references if r.controller]
    of = f" (uid {uids[0]}, not this one)" if uids else ""
    return f"Container {taken.project}/{taken.name} exists and is owned by {owner}{of}"


def _shared_network(app: Application, template: AppTemplate) -> tuple[str, str]:
    """The engine names the network replicas and balancer share may have: the one new
    networks get, and the one an earlier version gave (kept where it carries our labels)."""
    project, nets = app.project or "", template.containers[0].networks
    if nets:
        return network_name(project, nets[0]), legacy_name(project, nets[0])
    return default_network(project), legacy_default_network(project)


def _pulled_or_unplaceable(live: list[Container], revision: str) -> bool:
    """Whether a new replica's image was pulled (it has a container), or one cannot be
    placed (then old ones must go to make room, as before pulls were gated)."""
    new = [c for c in live if c.metadata.labels.get(LABEL_REVISION) == revision]
    unplaceable = any(
        (cond := c.status.condition("Ready")) is not None and cond.reason == "Unschedulable"
        for c in new
    )
    return unplaceable or any(c.status.image_id for c in new)


class DockerOrchestrator:
    def __init__(
        self,
        cluster: Cluster,
        containers: Records[Container],
        hosts: Records[Host],
        pool: RuntimePool,
        *,
        lb_image: str = DEFAULT_LB_IMAGE,
        drain_seconds: float = 2.0,
        admission: Admission | None = None,
    ) -> None:
        self.admission = admission or Admission(containers.store)
        self.cluster = cluster
        self.containers = containers
        self.hosts = hosts
        self.pool = pool
        self.lb_image = lb_image
        self.drain_seconds = drain_seconds
        #: balancer container id -> the configuration it was last given
        self._pushed: dict[str, str] = {}

    # -- records

    def _owned(self, app: Application) -> Iterator[Container]:
        return self.containers.all(lambda c: _owned_by(c, app))

    def _meta(self, app: Application, name: str, role: str, revision: str = "") -> ObjectMeta:
        labels = {LABEL_APP: app.name, LABEL_ROLE: role}
        if revision:
            labels[LABEL_REVISION] = revision
        owner = OwnerReference(kind="Application", name=app.name, uid=app.metadata.uid or "")
        return ObjectMeta(name=name, project=app.project, labels=labels, owner_references=[owner])

    def _replica(self, app: Application, template: AppTemplate, revision: str, n: int) -> Container:
        name = f"{app.name}-{revision}-{n}"
        if len(name) > 63:
            raise PermanentError(
                "Unsupported", f"metadata.name: {app.name!r} is too long for replica names"
            )
        spec = ContainerSpec.model_validate(template.containers[0].model_dump(exclude={"name"}))
        spec.ports = []  # replicas are reached through the balancer
        spec.labels = {**template.labels, **spec.labels}
        spec.host_selector = {**self.cluster.spec.host_selector, **spec.host_selector}
        return Container(metadata=self._meta(app, name, "replica", revision), spec=spec)

    def _balancer(self, app: Application, template: AppTemplate) -> Container | None:
        service = app.spec.service
        if service is None or service.type is ServiceType.INTERNAL or not service.ports:
            return None
        ports = [Port(container_port=p.port, host_port=p.node_port) for p in service.ports]
        spec = ContainerSpec(
            image=self.lb_image,
            ports=ports,
            host_selector=dict(self.cluster.spec.host_selector),
            networks=list(template.containers[0].networks),
        )
        return Container(metadata=self._meta(app, f"{app.name}-lb", "lb"), spec=spec)

    async def _create(self, app: Application, obj: Container) -> bool:
        """True when it was made now; False when this Application's is already there.
        `AlreadyExistsError` naming the owner when the name is another's."""
        try:
            await self.admission.create_child(obj, app)
        except AlreadyExistsError:
            taken = self.containers.get_by_name(obj.name, obj.project)
            if taken is None or _owned_by(taken, app):
                return False  # ours (the cache is behind), or gone meanwhile: next pass
            raise AlreadyExistsError(name_taken(taken)) from None
        return True

    async def _delete(self, obj: Container) -> None:
        with contextlib.suppress(NotFoundError):
            await self.containers.store.delete(Container, obj.name, obj.project)

    # -- the port

    async def info(self) -> ClusterInfo:
        wanted = self.cluster.spec.host_selector.items()
        hosts = list(
            self.hosts.all(
                lambda h: h.status.is_true("Ready") and wanted <= h.metadata.labels.items()
            )
        )
        if not hosts:
            raise TransientError("no Ready Host matches spec.hostSelector")
        return ClusterInfo(
            version=f"Docker {hosts[0].status.version}",
            nodes=len(hosts),
            cpus=sum(h.status.capacity.cpu for h in hosts),
            memory=sum(h.status.capacity.memory for h in hosts),
        )

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        """Changed: the balancer record made, rewritten or deleted. Replicas are to the app
        what Pods are to a ReplicaSet: making one for a replica that went (or that the rollout
        needs), draining and reaping are the app's own work, not a correction (a replica's
        container that drifted is counted as the Container's drift)."""
        if len(template.containers) != 1:
            raise PermanentError(
                "Unsupported",
                f"spec.template.containers: docker clusters run one container per replica; "
                f"the template has {len(template.containers)}",
            )
        owned = list(self._owned(app))
        lb, lb_changed = await self._ensure_balancer(app, template, owned)
        replicas = [c for c in owned if c.metadata.labels.get(LABEL_ROLE) == "replica"]
        draining = await self._step(app, template, revision, replicas)
        await self._sync_balancer(app, template, lb, replicas, draining)
        await self._reap(lb, replicas)
        return lb_changed

    async def _ensure_balancer(
        self, app: Application, template: AppTemplate, owned: list[Container]
    ) -> tuple[Container | None, bool]:
        """The balancer record, and whether it had to be made, rewritten or deleted."""
        wanted = self._balancer(app, template)
        lb = next((c for c in owned if c.metadata.labels.get(LABEL_ROLE) == "lb"), None)
        if wanted is None:
            if lb is None or lb.metadata.deletion_timestamp:
                return None, False
            await self._delete(lb)
            return None, True
        if lb is None:
            return None, await self._create(app, wanted)
        if lb.spec != wanted.spec and not lb.metadata.deletion_timestamp:
            lb.spec = wanted.spec
            await self.containers.update(lb)
            return lb, True
        return lb, False

    async def _step(
        self, app: Application, template: AppTemplate, revision: str, replicas: list[Container]
    ) -> set[str]:
        live = [c for c in replicas if not draining(c)]

        def as_replica(c: Container) -> Replica:
            return Replica(c.name, int(c.name.rsplit("-", 1)[1]), ready(c))

        new = [as_replica(c) for c in live if c.metadata.labels.get(LABEL_REVISION) == revision]
        old = [as_replica(c) for c in live if c.metadata.labels.get(LABEL_REVISION) != revision]
        surge, unavailable = surge_and_unavailable(app.spec.update_strategy, app.spec.replicas)
        step = plan(app.spec.replicas, surge, unavailable, new, old)
        step = hold_until_pulled(step, new, old, _pulled_or_unplaceable(live, revision))
        for n in step.create:
            await self._create(app, self._replica(app, template, revision, n))
        stamp = now().isoformat()
        for c in live:
            if c.name in step.drain:
                c.metadata.annotations[ANNOTATION_DRAIN] = stamp
                with contextlib.suppress(NotFoundError):
                    await self.containers.update(c)
        return {c.name for c in replicas if draining(c)} | set(step.drain)

    async def _sync_balancer(
        self,
        app: Application,
        template: AppTemplate,
        lb: Container | None,
        replicas: list[Container],
        draining: set[str],
    ) -> None:
        if lb is None or not lb.status.is_true("Ready") or not lb.status.container_id:
            return
        host = self.hosts.get_by_name(lb.status.host or "")
        if host is None:
            return
        nets = _shared_network(app, template)
        backends = [
            lb_config.Backend(c.name, c.status.ips[net])
            for c in replicas
            if ready(c) and c.name not in draining and c.status.host == lb.status.host
            for net in [next((n for n in nets if n in c.status.ips), "")]
            if net
        ]
        config = lb_config.render(app, backends)
        if self._pushed.get(lb.status.container_id) != config:
            await lb_config.push(self.pool.for_host(host), lb.status.container_id, config)
            self._pushed[lb.status.container_id] = config

    async def _reap(self, lb: Container | None, replicas: list[Container]) -> None:
        pushed = self._pushed.get(lb.status.container_id or "", "") if lb else ""
        due = now() - timedelta(seconds=self.drain_seconds)
        for c in replicas:
            since = c.metadata.annotations.get(ANNOTATION_DRAIN)
            if since is None or c.metadata.deletion_timestamp:
                continue
            if datetime.fromisoformat(since) <= due and f" {c.name} " not in pushed:
                await self._delete(c)

    async def observe(self, app: Application, revision: str) -> AppObservation:
        owned = list(self._owned(app))
        return observation(app, owned, revision, self._engine_since, self._balanced)

    def _balanced(self, lb: Container, up: list[Container]) -> bool:
        """Whether the configuration last pushed to the balancer names every ready replica
        on its host (and at least one): only then do its endpoints answer for them."""
        pushed = self._pushed.get(lb.status.container_id or "")
        local = [c for c in up if c.status.host == lb.status.host]
        return pushed is not None and bool(local) and all(f" {c.name} " in pushed for c in local)

    def _engine_since(self, name: str) -> datetime | None:
        """When the Host's engine last became Ready (None: it is not Ready, or gone)."""
        host = self.hosts.get_by_name(name)
        if host is None or not host.status.is_true("Ready"):
            return None
        cond = host.status.condition("Ready")
        return (cond.last_transition_time if cond else None) or EVER

    async def delete(self, app: Application) -> bool:
        owned = list(self._owned(app))
        for c in owned:
            if not c.metadata.deletion_timestamp:
                await self._delete(c)
        return not owned

    async def list_owned(self) -> list[OwnedApp]:
        out: dict[str, OwnedApp] = {}
        for c in self.containers.all(lambda c: LABEL_APP in c.metadata.labels):
            for ref in c.metadata.owner_references:
                if ref.kind == "Application":
                    out[ref.uid] = OwnedApp(c.project or "", ref.name, ref.uid)
        return list(out.values())

    async def close(self) -> None:
        self._pushed.clear()
