"""Quota admission: usage checked and charged in the same etcd transaction as the write.

The rule (see api/README.md):
- A project's usage lives at `/zun/quota-usage/<project>`. Every create or resize of a counted
  record (Container, Application, Volume, Network, GitRepository) in a project that has a Quota
  puts the new usage in
  the record's own transaction, compared on the usage key's mod_revision; a lost compare means
  another write charged first, so it reads again and retries. Where no Quota exists, the
  transaction instead compares that the Quota key is still absent, so a Quota made meanwhile
  cannot miss a charge.
- Usage is released by recounting, never by subtracting: when a counted key is deleted (a
  watch), when a Quota is made, and at start-up (the repair path), usage is recomputed from the
  records themselves, again compared on the usage key. Between a delete and its recount usage
  is over-counted, so a quota is never exceeded and nothing acknowledged is lost.
- A refusal (`ForbiddenError`, a 403 at the API) is also a Warning Event `QuotaExceeded`
  about the refused record (its kind and name, in its project), given a recorder: the tenant
  can read it there, and `zunctl describe` of that record shows it, as Kubernetes shows
  FailedCreate on the object whose write failed rather than on the ResourceQuota.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from zun_controller.engine.events import EventRecorder
from zun_controller.errors import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    TransientError,
)
from zun_controller.models.application import Application
from zun_controller.models.base import Resource
from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.network import Network, Volume
from zun_controller.models.project import Quota, QuotaLimits, QuotaUsage
from zun_controller.store.keys import record_key
from zun_controller.store.kv import Txn
from zun_controller.store.records import RecordStore

USAGE = "/zun/quota-usage/"
COUNTED: tuple[type[Resource], ...] = (Container, Application, Volume, Network, GitRepository)
ATTEMPTS = 200
R = TypeVar("R", bound=Resource)
log = logging.getLogger(__name__)


def charge_of(obj: Resource) -> QuotaUsage:
    """What one record counts against its project's quota."""
    if isinstance(obj, Container):
        res = obj.spec.resources
        return QuotaUsage(containers=1, cpu=res.cpu or 0.0, memory=res.memory or 0)
    if isinstance(obj, Application):
        n = obj.spec.replicas
        cpu = sum(c.resources.cpu or 0.0 for c in obj.spec.template.containers)
        mem = sum(c.resources.memory or 0 for c in obj.spec.template.containers)
        return QuotaUsage(applications=1, replicas=n, cpu=n * cpu, memory=n * mem)
    if isinstance(obj, Volume):
        return QuotaUsage(volumes=1)
    if isinstance(obj, Network):
        return QuotaUsage(networks=1)
    if isinstance(obj, GitRepository):
        return QuotaUsage(gitrepositories=1)
    return QuotaUsage()


def add(a: QuotaUsage, b: QuotaUsage, sign: int = 1) -> QuotaUsage:
    """a + sign * b; cpu kept to whole millicores, so sums do not drift."""
    total = {f: getattr(a, f) + sign * getattr(b, f) for f in QuotaUsage.model_fields}
    total["cpu"] = round(total["cpu"], 3)
    return QuotaUsage.model_validate(total)


def exceeded(used: QuotaUsage, limits: QuotaLimits, growth: QuotaUsage) -> list[str]:
    """Resources that `used` puts over their limit and that this write makes grow."""
    out = []
    for f in QuotaUsage.model_fields:
        limit = getattr(limits, f)
        if limit is not None and getattr(growth, f) > 0 and getattr(used, f) > limit + 1e-9:
            out.append(f"{f}: {getattr(used, f):g} > {limit:g}")
    return out


class QuotaAdmission:
    """Charges creates and resizes of counted records in their own transaction (module doc)."""

    def __init__(self, store: RecordStore, recorder: EventRecorder | None = None) -> None:
        self.store = store
        self.recorder = recorder

    async def usage(self, project: str) -> tuple[QuotaUsage, int]:
        kv = await self.store.kv.get(USAGE + project)
        if kv is None:
            return QuotaUsage(), 0
        return QuotaUsage.model_validate_json(kv.value), kv.mod_revision

    def _refuse(self, about: Resource, verb: str, over: list[str]) -> NoReturn:
        message = f"exceeded quota of project {about.project!r}: {', '.join(over)}"
        if self.recorder is not None:
            self.recorder.record(about, "Warning", "QuotaExceeded", f"{verb} refused: {message}")
        raise ForbiddenError(message)

    async def _guard(self, about: Resource, verb: str, delta: QuotaUsage) -> Txn:
        project = about.project or ""
        quota_key = record_key(Quota.KIND, project, None)
        try:
            quota = await self.store.get(Quota, project)
        except NotFoundError:
            return Txn(compares=[(quota_key, 0)])
        used, rev = await self.usage(project)
        new = add(used, delta)
        over = exceeded(new, quota.spec.limits, delta)
        if over:
            self._refuse(about, verb, over)
        return Txn(
            compares=[
                (USAGE + project, rev),
                (quota_key, int(quota.metadata.resource_version or 0)),
            ],
            puts=[(USAGE + project, new.model_dump_json().encode())],
        )

    async def create(self, obj: R, lease: int = 0) -> R:
        """Create `obj`, charged to its project; `lease` (an etcd lease id) ties its key to it."""
        if not isinstance(obj, COUNTED) or not obj.project:
            return await self.store.create(obj, guard=Txn(lease=lease) if lease else None)
        delta = charge_of(obj)
        return await _retry(
            lambda: self._guarded(obj, "create", delta, lambda g: self.store.create(obj, guard=g))
        )

    async def update(self, obj: R, old: R) -> R:
        if not isinstance(obj, COUNTED) or not obj.project:
            return await self.store.update(obj)
        project, delta = obj.project, add(charge_of(obj), charge_of(old), -1)

        async def write(guard: Txn) -> R:
            try:
                return await self.store.update(obj, guard=guard)
            except ConflictError:
                now = await self.store.get(type(obj), obj.name, project)
                if now.metadata.resource_version != obj.metadata.resource_version:
                    raise
                raise _GuardLost from None

        return await _retry(lambda: self._guarded(old, "update", delta, write))

    async def _guarded(
        self,
        about: Resource,
        verb: str,
        delta: QuotaUsage,
        write: Callable[[Txn], Awaitable[R]],
    ) -> R:
        guard = await self._guard(about, verb, delta)
        try:
            return await write(guard)
        except AlreadyExistsError:
            raise
        except ConflictError as exc:
            if isinstance(exc, _GuardLost) or "guard changed" in str(exc):
                raise _GuardLost from None
            raise

    async def recompute(self, project: str) -> QuotaUsage | None:
        """Usage counted from the records (the release and repair path); None without a Quota."""
        for _ in range(ATTEMPTS):
            try:
                await self.store.get(Quota, project)
            except NotFoundError:
                return None
            _, rev = await self.usage(project)
            total = QuotaUsage()
            for cls in COUNTED:
                for obj in (await self.store.list(cls, project)).items:
                    total = add(total, charge_of(obj))
            txn = Txn(
                compares=[(USAGE + project, rev)],
                puts=[(USAGE + project, total.model_dump_json().encode())],
            )
            if (await self.store.kv.commit(txn)).succeeded:
                return total
        raise TransientError(f"quota usage of {project!r} kept changing; try again")

    async def repair_all(self) -> None:
        for quota in (await self.store.list(Quota)).items:
            await self.recompute(quota.name)


class _GuardLost(ConflictError):
    """Another write charged the quota first; read the usage again."""


async def _retry(attempt: Callable[[], Awaitable[R]]) -> R:
    for i in range(ATTEMPTS):
        try:
            return await attempt()
        except _GuardLost:
            await asyncio.sleep(random.uniform(0, 0.002 * min(i + 1, 10)))
    raise TransientError("quota usage kept changing; try again")
