"""The garbage collector on the in-memory store: what it collects, what it keeps, propagation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from zun_controller.engine.gc import GarbageCollector, register_garbage_collector
from zun_controller.engine.informer import Cached, Informer
from zun_controller.engine.manager import Manager
from zun_controller.engine.ownership import OwnerIndex
from zun_controller.errors import NotFoundError
from zun_controller.metrics import Metrics
from zun_controller.models.base import OwnerReference, Resource
from zun_controller.models.container import Container
from zun_controller.models.deletion import FOREGROUND, ORPHAN
from zun_controller.models.host import Host
from zun_controller.models.registry import parse
from zun_controller.store.codec import encode
from zun_controller.store.keys import record_key
from zun_controller.store.kv import Txn
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore


def container(
    name: str, *owners: Resource | OwnerReference, finalizers: tuple[str, ...] = ()
) -> Container:
    refs = [
        o if isinstance(o, OwnerReference) else _ref_to(o)
        for o in owners  # a record, or a reference written by hand
    ]
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Container",
            "metadata": {
                "name": name,
                "project": "demo",
                "ownerReferences": [r.model_dump(by_alias=True) for r in refs],
                "finalizers": list(finalizers),
            },
            "spec": {"image": "busybox"},
        }
    )
    assert isinstance(obj, Container)
    return obj


def _ref_to(owner: Resource) -> OwnerReference:
    return OwnerReference(kind=owner.KIND.kind, name=owner.name, uid=owner.metadata.uid or "")


def host(name: str) -> Host:
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Host",
            "metadata": {"name": name},
            "spec": {"endpoint": "unix:///nowhere.sock"},
        }
    )
    assert isinstance(obj, Host)
    return obj


async def exists(store: RecordStore, cls: type[Resource], name: str, project: str | None) -> bool:
    try:
        await store.get(cls, name, project)
    except NotFoundError:
        return False
    return True


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait until the async `check()` holds (the collector has no hook to await)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
def store() -> RecordStore:
    return RecordStore(MemoryKV())


@pytest.fixture
async def collector(store: RecordStore) -> AsyncIterator[GarbageCollector]:
    manager = Manager(metrics=Metrics(), health_port=None)
    gc = register_garbage_collector(manager, store, manager.metrics, resync_period=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    yield gc
    stop.set()
    await asyncio.wait_for(task, 5)


async def settled(gc: GarbageCollector) -> None:
    """Until every record is in the caches at its stored revision and the queue is idle."""

    async def caught_up() -> bool:
        kvs, _ = await gc.store.list_raw("/zun/registry/")
        for kv in kvs:
            key = kv.key.removeprefix("/zun/registry/")
            cached = gc.informers[key.partition("/")[0]].raw(key)
            if cached is None or cached.mod_revision != kv.mod_revision:
                return False
        return gc.controller is not None and len(gc.controller.queue) == 0

    await eventually(caught_up)
    await asyncio.sleep(0.05)
    await eventually(caught_up)


async def _true(value: bool) -> bool:
    return value


async def test_a_dangling_reference_is_collected(
    store: RecordStore, collector: GarbageCollector
) -> None:
    ghost = OwnerReference(kind="Container", name="ghost", uid="no-such-uid")
    await store.create(container("child", ghost))
    await eventually(lambda: _gone(store, "child"))


async def _gone(store: RecordStore, name: str) -> bool:
    return not await exists(store, Container, name, "demo")


async def test_a_record_whose_owner_exists_is_kept_and_goes_with_it(
    store: RecordStore, collector: GarbageCollector
) -> None:
    owner = await store.create(container("owner"))
    await store.create(container("child", owner))
    await store.create(container("other"))
    await settled(collector)
    assert await exists(store, Container, "child", "demo")
    await store.delete(Container, "owner", "demo")
    await eventually(lambda: _gone(store, "child"))
    assert await exists(store, Container, "other", "demo")


async def test_a_cluster_scoped_owner_is_found_outside_the_project(
    store: RecordStore, collector: GarbageCollector
) -> None:
    owner = await store.create(host("h1"))
    await store.create(container("child", owner))
    await settled(collector)
    assert await exists(store, Container, "child", "demo")
    await store.delete(Host, "h1")
    await eventually(lambda: _gone(store, "child"))


async def test_an_owner_recreated_under_its_name_does_not_adopt_the_old_ones_dependents(
    store: RecordStore, collector: GarbageCollector
) -> None:
    old = await store.create(container("owner"))
    await store.create(container("old-child", old))
    await settled(collector)
    await store.delete(Container, "owner", "demo")
    new = await store.create(container("owner"))
    await store.create(container("new-child", new))
    await eventually(lambda: _gone(store, "old-child"))
    await settled(collector)
    assert await exists(store, Container, "new-child", "demo")


async def test_a_dangling_reference_stored_while_no_controller_ran_is_collected_on_start(
    store: RecordStore,
) -> None:
    dangling = container("child", OwnerReference(kind="Container", name="gone", uid="u-1"))
    dangling.metadata.uid = "u-child"
    key = record_key(dangling.KIND, "child", "demo")
    await store.kv.commit(Txn(puts=[(key, encode(dangling))]))
    manager = Manager(metrics=Metrics(), health_port=None)
    register_garbage_collector(manager, store, manager.metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    try:
        await eventually(lambda: _gone(store, "child"))
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_an_owner_missing_from_the_cache_but_in_the_store_is_not_collected_against(
    store: RecordStore,
) -> None:
    """The Host informer never ran, so its cache is empty: the store decides."""
    owner = await store.create(host("h1"))
    child = await store.create(container("child", owner))
    metrics = Metrics()
    containers = Informer(store, Container, metrics=metrics)
    hosts = Informer(store, Host, metrics=metrics)
    gc = GarbageCollector(store, {"containers": containers, "hosts": hosts})
    listing = asyncio.create_task(containers.run())
    try:
        await asyncio.wait_for(containers.synced.wait(), 5)
        await gc.reconcile(child.key)
        assert await exists(store, Container, "child", "demo")
        await store.delete(Host, "h1")
        await gc.reconcile(child.key)
        assert not await exists(store, Container, "child", "demo")
    finally:
        listing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listing


async def test_a_reference_of_an_unknown_kind_or_without_uid_never_counts_as_gone(
    store: RecordStore, collector: GarbageCollector
) -> None:
    await store.create(container("child", OwnerReference(kind="Gadget", name="g", uid="u")))
    await store.create(container("no-uid", OwnerReference(kind="Container", name="x", uid="")))
    await settled(collector)
    assert await exists(store, Container, "child", "demo")
    assert await exists(store, Container, "no-uid", "demo")


async def test_dangling_references_are_dropped_from_a_record_that_has_another_owner(
    store: RecordStore, collector: GarbageCollector
) -> None:
    owner = await store.create(container("owner"))
    ghost = OwnerReference(kind="Container", name="ghost", uid="u-ghost")
    await store.create(container("child", owner, ghost))

    async def one_owner_left() -> bool:
        refs = (await store.get(Container, "child", "demo")).metadata.owner_references
        return [r.uid for r in refs] == [owner.metadata.uid]

    await eventually(one_owner_left)


async def test_foreground_keeps_the_owner_until_its_dependents_are_gone(
    store: RecordStore, collector: GarbageCollector
) -> None:
    owner = await store.create(container("owner"))
    await store.create(container("slow", owner, finalizers=("test/held",)))
    await store.create(container("quick", owner))
    await settled(collector)
    deleting = await store.delete(Container, "owner", "demo", finalizer=FOREGROUND)
    assert deleting.metadata.deletion_timestamp is not None
    await eventually(lambda: _gone(store, "quick"))

    async def slow_deleting() -> bool:
        return (await store.get(Container, "slow", "demo")).metadata.deletion_timestamp is not None

    await eventually(slow_deleting)
    await settled(collector)
    held = await store.get(Container, "owner", "demo")
    assert held.metadata.finalizers == [FOREGROUND]
    slow = await store.get(Container, "slow", "demo")
    slow.metadata.finalizers = []
    await store.update(slow)
    await eventually(lambda: _gone(store, "owner"))


async def test_foreground_propagates_down_a_chain(
    store: RecordStore, collector: GarbageCollector
) -> None:
    top = await store.create(container("top"))
    middle = await store.create(container("middle", top))
    await store.create(container("bottom", middle, finalizers=("test/held",)))
    await settled(collector)
    await store.delete(Container, "top", "demo", finalizer=FOREGROUND)

    async def middle_waits() -> bool:
        meta = (await store.get(Container, "middle", "demo")).metadata
        return meta.deletion_timestamp is not None and FOREGROUND in meta.finalizers

    await eventually(middle_waits)
    assert await exists(store, Container, "top", "demo")
    bottom = await store.get(Container, "bottom", "demo")
    assert bottom.metadata.deletion_timestamp is not None
    bottom.metadata.finalizers = []
    await store.update(bottom)
    await eventually(lambda: _gone(store, "top"))
    assert not await exists(store, Container, "middle", "demo")


async def test_orphan_cuts_the_dependents_loose_then_lets_the_owner_go(
    store: RecordStore, collector: GarbageCollector
) -> None:
    owner = await store.create(container("owner"))
    other = await store.create(container("other-owner"))
    await store.create(container("a", owner))
    await store.create(container("b", owner, other))
    await settled(collector)
    await store.delete(Container, "owner", "demo", finalizer=ORPHAN)
    await eventually(lambda: _gone(store, "owner"))
    await settled(collector)
    a = await store.get(Container, "a", "demo")
    b = await store.get(Container, "b", "demo")
    assert a.metadata.owner_references == []
    assert [r.uid for r in b.metadata.owner_references] == [other.metadata.uid]
    assert a.metadata.deletion_timestamp is None and b.metadata.deletion_timestamp is None


async def test_a_deleting_record_without_finalizers_is_removed_when_the_gc_drops_its_own(
    store: RecordStore, collector: GarbageCollector
) -> None:
    await store.create(container("lonely"))
    await store.delete(Container, "lonely", "demo", finalizer=FOREGROUND)
    await eventually(lambda: _gone(store, "lonely"))


def test_the_index_names_dependents_by_owner_key_and_uid() -> None:
    queued: list[str] = []
    index = OwnerIndex(queued.append)
    owner = container("owner")
    owner.metadata.uid = "u-1"
    child = container("child", owner)
    child.metadata.uid = "u-2"
    cached = Cached(encode(child), 5)
    index.on_change(child.key, None, cached)
    assert index.dependents("containers/demo/owner", "u-1") == ["containers/demo/child"]
    assert index.dependents("containers/demo/owner", "u-other") == []
    assert queued == ["containers/demo/child"]
    owned = Cached(encode(owner), 6)
    index.on_change(owner.key, None, owned)
    assert queued == ["containers/demo/child", "containers/demo/child"]
    queued.clear()
    owner.status.phase = "Running"
    index.on_change(owner.key, owned, Cached(encode(owner), 7))
    assert queued == []  # the owner's status writes do not wake its dependents
    index.on_change(owner.key, owned, None)
    assert queued == ["containers/demo/child"]
    queued.clear()
    index.on_change(child.key, cached, None)
    assert index.dependents("containers/demo/owner", "u-1") == []
    assert queued == ["containers/demo/owner"]
