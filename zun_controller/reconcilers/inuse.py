"""In-use protection: a record that other records use is held on delete until none is left.

A protected kind has a finalizer and a `users` function naming the records that use a given
record, read from informer caches (a Cluster: the Applications on it; a Secret: the Clusters
naming it; a Volume or Network: the Containers mounting or joining it; a Host: the Containers
placed on it). While a deleting record has users it keeps its finalizer and shows condition
`InUse` (True, reason `InUse`, message `used by Application demo/shop, demo/web`); it is looked
at again every `RECHECK` seconds and whenever a user changes (the wiring maps users' events onto
it). Once no user is left the finalizer goes; a caller with something outside to remove does so
between `held` and `release`.

Adding the finalizer is a metadata write: no spec change, so no new generation, and nothing
outside the store is touched. `users` must only read caches: it runs on every reconcile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from zun_controller.engine.client import Records
from zun_controller.engine.informer import Cached
from zun_controller.engine.reconciler import Result
from zun_controller.errors import InvalidError, NotFoundError
from zun_controller.models.base import Resource
from zun_controller.store.codec import load

R = TypeVar("R", bound=Resource)

IN_USE_FINALIZER = "zun.openstack.org/in-use"
IN_USE = "InUse"
RECHECK = 5.0


@dataclass(frozen=True, order=True)
class User:
    """One record that uses another: its kind and where it is."""

    kind: str
    name: str
    project: str | None = None

    @classmethod
    def of(cls, obj: Resource) -> User:
        return cls(obj.KIND.kind, obj.name, obj.project)

    @property
    def ref(self) -> str:
        return f"{self.project}/{self.name}" if self.project else self.name


def used_by(users: Iterable[User]) -> str:
    """`used by Application demo/shop, demo/web; Container demo/db`: by kind, sorted."""
    refs: dict[str, list[str]] = {}
    for user in sorted(set(users)):
        refs.setdefault(user.kind, []).append(user.ref)
    return "used by " + "; ".join(f"{kind} {', '.join(names)}" for kind, names in refs.items())


def deleting(cached: Cached | None) -> bool:
    """Whether a cached raw record is marked deleting (for mappers: only those need waking)."""
    if cached is None:
        return False
    try:
        value = load(cached.value)
    except InvalidError:
        return False
    meta = value.get("metadata")
    return isinstance(meta, dict) and bool(meta.get("deletionTimestamp"))


class InUseGuard(Generic[R]):
    """The in-use rule for one kind: `protect` while it lives, `held`/`release` on delete."""

    def __init__(
        self,
        records: Records[R],
        users: Callable[[R], Iterable[User]],
        finalizer: str = IN_USE_FINALIZER,
        *,
        not_ready: bool = False,
    ) -> None:
        """`not_ready`: while held, condition `Ready` is also False with reason `InUse` (for
        kinds whose readiness means usable)."""
        self.records, self.users, self.finalizer = records, users, finalizer
        self.not_ready = not_ready

    async def protect(self, obj: R) -> R:
        """`obj` with the finalizer (written when missing; a deleting record is not touched)."""
        if self.finalizer in obj.metadata.finalizers or obj.metadata.deletion_timestamp:
            return obj
        obj.metadata.finalizers.append(self.finalizer)
        return await self.records.update(obj)

    async def held(self, obj: R) -> bool:
        """Whether users still hold deleting `obj`; if so, its `InUse` condition names them
        (written to status, compare-and-swap: a stale cache is a conflict, retried)."""
        users = list(self.users(obj))
        if not users:
            return False
        before = obj.status.model_copy(deep=True)
        obj.status.set_condition(IN_USE, True, IN_USE, used_by(users))
        if self.not_ready:
            obj.status.set_condition("Ready", False, IN_USE, used_by(users))
        await self.records.write_status(obj, before)
        return True

    async def release(self, obj: R) -> None:
        """Drop the finalizer; the store removes the record when it was the last one."""
        obj.metadata.finalizers = [f for f in obj.metadata.finalizers if f != self.finalizer]
        with contextlib.suppress(NotFoundError):
            await self.records.update(obj)

    async def finalize(self, obj: R) -> Result:
        """The whole delete of a kind with nothing outside: wait while used, then release."""
        if self.finalizer not in obj.metadata.finalizers:
            return Result()
        if await self.held(obj):
            return Result(requeue_after=RECHECK)
        await self.release(obj)
        return Result()

    async def reconcile(self, key: str) -> Result:
        """The whole reconcile of a kind with nothing outside: protect it while it lives,
        `finalize` it once deleting."""
        obj = self.records.get(key)
        if obj is None:
            return Result()
        if obj.metadata.deletion_timestamp:
            return await self.finalize(obj)
        await self.protect(obj)
        return Result()
