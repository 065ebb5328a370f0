"""`Admission`: the one path every writer's creates and updates take to the store.

`prepare(obj, old, writer)` validates and defaults without writing; `create` and `update`
prepare, then write with the quota charged in the record's own transaction. In order:

1. sizes and quantities (every writer): `InvalidError` (422) naming the field;
   then the OCI runtime of each template container is chosen (every writer; the project's
   runtime as the default, admission/runtime.py);
2. admin-only fields, the port policy (writers without admin rights): `ForbiddenError` (403)
   for admin-only fields (a runtime other than the replaced record's or the project's, the
   acts-as annotation), `InvalidError` for ports; on an update, sizes, quantities and ports
   the replaced record already broke at the same field are let be (a record made before a
   rule existed can still be stopped or scaled down), except replicas growing past the bound;
3. owner references (writers without admin rights): each reference this write adds names a
   record of a project-scoped kind, in the record's own project, whose uid matches; else an
   `InvalidError` naming `metadata.ownerReferences[i]`;
4. Cluster use: an Application created or moved to a Cluster whose `allowedProjects` does not
   list its project, or (writers without admin rights) whose template names a runtime on a
   Cluster that cannot run one (swarm, kubernetes), is an `InvalidError` naming `spec.cluster`;
5. resource defaults (admission/defaults.py), then the quota (admission/quota.py);
   an Event is rate-limited per project and written under a lease (admission/events.py).

Children the controller makes (`create_child`) are checked against their owner instead: they
must reference it, in its project, and carry no admin-only value its spec does not carry
(a runtime the owner's templates do not name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from zun_controller.admission import checks, runtime
from zun_controller.admission.defaults import with_defaults
from zun_controller.admission.events import EventAdmission
from zun_controller.admission.policy import AdmissionPolicy, Writer
from zun_controller.admission.quota import QuotaAdmission
from zun_controller.engine.events import EventRecorder
from zun_controller.errors import FieldError, ForbiddenError, InvalidError, NotFoundError
from zun_controller.models.application import Application, Cluster, ClusterType
from zun_controller.models.base import OwnerReference, Resource, Scope
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.project import Project, Quota
from zun_controller.models.registry import kinds
from zun_controller.store.records import RecordStore

R = TypeVar("R", bound=Resource)
Rule = Callable[[Resource, AdmissionPolicy], list[FieldError]]


class Admission:
    def __init__(
        self,
        store: RecordStore,
        policy: AdmissionPolicy | None = None,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or AdmissionPolicy()
        self.quota = QuotaAdmission(store, recorder)
        self.events = EventAdmission(store, self.policy)

    async def prepare(self, obj: R, old: R | None, writer: Writer) -> R:
        """`obj` as it would be written for `writer` (defaults filled); raises what it breaks."""
        _raise(self._new(checks.sizes, obj, old) + self._new(checks.quantities, obj, old))
        project_runtime = await self._project_runtime(obj)
        obj = runtime.with_runtime(obj, old, project_runtime)
        if not writer.admin:
            admin_only = runtime.refused(obj, old, project_runtime)
            admin_only += checks.admin_fields(obj, old)
            if admin_only:
                raise ForbiddenError(f"{'; '.join(map(str, admin_only))} ({writer.name})")
            _raise(self._new(checks.ports, obj, old) + await self._owners(obj, old))
        _raise(await self._cluster_use(obj, old, writer))
        if await self._limits_resources(obj.project):
            return with_defaults(obj, old, self.policy)
        return obj

    async def create(self, obj: R, writer: Writer) -> R:
        new = await self.prepare(obj, None, writer)
        if isinstance(new, Event) and new.project:
            self.events.take(new.project)
            return await self.quota.create(new, lease=await self.events.lease())
        created = await self.quota.create(new)
        if isinstance(created, Quota):
            await self.quota.recompute(created.name)
        return created

    async def update(self, obj: R, old: R, writer: Writer) -> R:
        return await self.quota.update(await self.prepare(obj, old, writer), old)

    async def create_child(self, child: R, owner: Resource) -> R:
        """Create a record the controller makes for `owner`, with `owner`'s rights."""
        _raise(child_errors(child, owner) + checks.sizes(child, self.policy))
        return await self.store.create(child)

    def _new(self, rule: Rule, obj: Resource, old: Resource | None) -> list[FieldError]:
        """What `obj` breaks that `old` did not already break at the same field, so a record
        made before a rule existed can still be changed (stopped, scaled down) as it is; its
        replicas may not grow past the bound, though."""
        errors = rule(obj, self.policy)
        if old is None or not errors:
            return errors
        before = {e.path for e in rule(old, self.policy)}
        return [e for e in errors if e.path not in before or _grows(e, obj, old)]

    async def _project_runtime(self, obj: Resource) -> str | None:
        """The runtime `obj`'s project runs containers under (None: no Project record, or
        none set, or a kind without containers)."""
        if not obj.project or not isinstance(obj, Container | Application):
            return None
        try:
            return (await self.store.get(Project, obj.project)).spec.runtime
        except NotFoundError:
            return None

    async def _owners(self, obj: Resource, old: Resource | None) -> list[FieldError]:
        known = {r.uid for r in old.metadata.owner_references} if old is not None else set()
        out = []
        for i, ref in enumerate(obj.metadata.owner_references):
            if ref.uid not in known:
                reason = await self._owner_problem(obj, ref)
                if reason:
                    out.append(FieldError(f"metadata.ownerReferences[{i}]", reason))
        return out

    async def _owner_problem(self, obj: Resource, ref: OwnerReference) -> str | None:
        cls = next((k for k in kinds() if k.KIND.kind == ref.kind), None)
        if cls is None or cls.KIND.scope is not Scope.PROJECT:
            return f"{ref.kind!r} is not a kind of this project's records"
        try:
            owner = await self.store.get(cls, ref.name, obj.project)
        except NotFoundError:
            return f"no {ref.kind} {ref.name!r} in project {obj.project!r}"
        if owner.metadata.uid != ref.uid:
            return f"uid {ref.uid!r} is not the uid of {ref.kind} {ref.name!r}"
        return None

    async def _cluster_use(
        self, obj: Resource, old: Resource | None, writer: Writer
    ) -> list[FieldError]:
        if writer.admin or not isinstance(obj, Application):
            return []
        moved = not isinstance(old, Application) or old.spec.cluster != obj.spec.cluster
        had = checks.runtimes_of(old) if isinstance(old, Application) else set()
        if not moved and checks.runtimes_of(obj) <= had | {None}:
            return []
        try:
            cluster = await self.store.get(Cluster, obj.spec.cluster)
        except NotFoundError:
            return []  # the reconciler waits for it (condition ClusterNotFound)
        reason = (cluster_refusal(cluster, obj.project or "") if moved else None) or (
            runtime_refusal(cluster, obj)
        )
        return [FieldError("spec.cluster", reason)] if reason else []

    async def _limits_resources(self, project: str | None) -> bool:
        if not project:
            return False
        try:
            quota = await self.store.get(Quota, project)
        except NotFoundError:
            return False
        return quota.spec.limits.cpu is not None or quota.spec.limits.memory is not None


def cluster_refusal(cluster: Cluster, project: str) -> str | None:
    """Why `project` may not use `cluster` (None: it may)."""
    allowed = cluster.spec.allowed_projects
    if allowed and project not in allowed:
        return f"Cluster {cluster.name!r} does not allow project {project!r}"
    return None


def runtime_refusal(cluster: Cluster, app: Application) -> str | None:
    """Why `app`'s template runtime cannot run on `cluster` (None: it can). Only Zun's own
    Hosts (`docker` Clusters) choose a runtime per container; Swarm services and Kubernetes
    Deployments would run the template under the engine's default, out of the sandbox."""
    named = sorted(r for r in checks.runtimes_of(app) if r is not None)
    if named and cluster.spec.type is not ClusterType.DOCKER:
        return (
            f"Cluster {cluster.name!r} ({cluster.spec.type.value}) cannot run containers under "
            f"runtime {named[0]!r}"
        )
    return None


def child_errors(child: Resource, owner: Resource) -> list[FieldError]:
    """What a controller-made child breaks: it must reference `owner` by uid, live in its
    project, and name no OCI runtime the owner's templates do not."""
    out = []
    refs = child.metadata.owner_references
    if child.project != owner.project or not any(r.uid == owner.metadata.uid for r in refs):
        out.append(
            FieldError("metadata.ownerReferences", "must reference its owner, in its project")
        )
    extra = checks.runtimes_of(child) - checks.runtimes_of(owner) - {None}
    if extra:
        out.append(FieldError("spec.runtime", "only the owner's runtime may be used"))
    return out


def _grows(error: FieldError, obj: Resource, old: Resource) -> bool:
    if error.path != "spec.replicas":
        return False
    assert isinstance(obj, Application) and isinstance(old, Application)
    return obj.spec.replicas > old.spec.replicas


def _raise(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidError(errors)
