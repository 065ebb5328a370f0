"""`Records`: what a reconciler uses to read a kind (from the informer cache) and write it back.

Reads hand out fresh objects; status writes go without a read when the cache still has the
record at the object's resourceVersion, and are skipped when nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from zun_controller.engine.informer import Informer
from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource, Status
from zun_controller.store.records import RecordStore

R = TypeVar("R", bound=Resource)


class Records(Generic[R]):
    def __init__(self, store: RecordStore, informer: Informer[R]) -> None:
        self.store = store
        self.informer = informer

    def check_leading(self, what: str) -> None:
        """Before an action outside the store: raise `FencedError` unless this replica surely
        still holds the lease (a no-op without leader election)."""
        if self.store.fence is not None:
            self.store.fence.check(what)

    def get(self, key: str) -> R | None:
        return self.informer.get(key)

    def get_by_name(self, name: str, project: str | None = None) -> R | None:
        return self.informer.get_by_name(name, project)

    def all(self, where: Callable[[R], bool] | None = None) -> Iterator[R]:
        """Every valid record in the cache (invalid ones are skipped: they get their own
        condition when reconciled)."""
        for key in self.informer.list_keys():
            try:
                obj = self.informer.get(key)
            except InvalidError:
                continue
            if obj is not None and (where is None or where(obj)):
                yield obj

    async def write_status(self, obj: R, before: Status | None = None) -> R:
        """Write obj's status unless it equals `before` (the status as read)."""
        if before is not None and obj.status == before:
            return obj
        return await self.store.update_status(obj, stored=self.informer.stored(obj))

    async def update(self, obj: R) -> R:
        return await self.store.update(obj)
