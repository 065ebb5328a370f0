"""The store contract: every test runs on MemoryKV and on a real etcd (the `kv` fixture)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from zun_controller.engine.leader import LeaderElector
from zun_controller.errors import (
    AlreadyExistsError,
    CompactedError,
    ConflictError,
    FencedError,
    InvalidError,
    NotFoundError,
)
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container, EnvVar
from zun_controller.models.registry import parse
from zun_controller.store import records
from zun_controller.store.batch import TxnBatcher
from zun_controller.store.keys import kind_prefix
from zun_controller.store.kv import KV, EventType, Txn
from zun_controller.store.records import RecordStore


def container(name: str, project: str = "demo", **meta: object) -> Container:
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Container",
            "metadata": {"name": name, "project": project, **meta},
            "spec": {"image": "busybox"},
        }
    )
    assert isinstance(obj, Container)
    return obj


@pytest.fixture
def store(kv: KV) -> RecordStore:
    return RecordStore(kv)


async def test_create_sets_identity_and_rejects_duplicates(store: RecordStore) -> None:
    created = await store.create(container("web-1"))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.metadata.resource_version
    got = await store.get(Container, "web-1", "demo")
    assert got == created
    with pytest.raises(AlreadyExistsError):
        await store.create(container("web-1"))


async def test_get_missing_is_not_found(store: RecordStore) -> None:
    with pytest.raises(NotFoundError, match="demo/nope"):
        await store.get(Container, "nope", "demo")


async def test_create_ignores_status_and_identity_from_caller(store: RecordStore) -> None:
    obj = container("web-1", uid="forged", generation=9)
    obj.status.phase = "Running"
    created = await store.create(obj)
    assert created.metadata.uid != "forged"
    assert created.metadata.generation == 1
    assert created.status.phase == ""


async def test_stale_update_conflicts_and_loses_nothing(store: RecordStore) -> None:
    first = await store.create(container("web-1"))
    a, b = first.model_copy(deep=True), first.model_copy(deep=True)
    a.spec.image = "one"
    b.spec.image = "two"
    await store.update(a)
    with pytest.raises(ConflictError, match="stale"):
        await store.update(b)
    assert (await store.get(Container, "web-1", "demo")).spec.image == "one"


async def test_a_delete_survives_a_status_write_between_its_read_and_its_swap(
    store: RecordStore,
) -> None:
    """Seen in CI: a test deleted an Application while its controller wrote status; a delete
    without a precondition must not fail for it (one with a precondition still conflicts)."""
    await store.create(container("web-1", finalizers=["zun.openstack.org/runtime"]))
    real_get, controller = store.get, RecordStore(store.kv)
    races = 0

    async def get_then_race(*args: Any, **kwargs: Any) -> Any:
        nonlocal races
        current = await real_get(*args, **kwargs)
        if races < 2:
            races += 1
            other = current.model_copy(deep=True)
            other.status.phase = f"Running{races}"
            await controller.update_status(other)
        return current

    store.get = get_then_race  # type: ignore[method-assign]
    deleted = await store.delete(Container, "web-1", "demo")
    assert deleted.metadata.deletion_timestamp is not None and races == 2
    assert deleted.status.phase == "Running2"
    version = (await store.create(container("web-2"))).metadata.resource_version
    races = 0
    with pytest.raises(ConflictError):
        await store.delete(Container, "web-2", "demo", resource_version=version)
    assert races == 1


async def test_generation_moves_only_with_spec(store: RecordStore) -> None:
    obj = await store.create(container("web-1"))
    obj.metadata.labels = {"tier": "web"}
    obj = await store.update(obj)
    assert obj.metadata.generation == 1
    obj.spec.image = "httpd"
    obj = await store.update(obj)
    assert obj.metadata.generation == 2


async def test_status_write_never_touches_spec_or_generation(store: RecordStore) -> None:
    obj = await store.create(container("web-1"))
    obj.spec.image = "sneaky"
    obj.status.phase = "Running"
    obj.status.observed_generation = 1
    written = await store.update_status(obj)
    stored = await store.get(Container, "web-1", "demo")
    assert stored.spec.image == "busybox"
    assert stored.metadata.generation == 1
    assert stored.status.phase == "Running"
    assert written.metadata.resource_version == stored.metadata.resource_version


async def test_spec_write_keeps_status(store: RecordStore) -> None:
    obj = await store.create(container("web-1"))
    obj.status.phase = "Running"
    obj = await store.update_status(obj)
    obj.status.phase = "Forged"
    obj.spec.image = "httpd"
    await store.update(obj)
    assert (await store.get(Container, "web-1", "demo")).status.phase == "Running"


async def test_update_without_resource_version_is_invalid(store: RecordStore) -> None:
    await store.create(container("web-1"))
    with pytest.raises(InvalidError, match=r"metadata\.resourceVersion"):
        await store.update(container("web-1"))


async def test_delete_waits_for_finalizers(store: RecordStore) -> None:
    await store.create(container("web-1", finalizers=["zun.openstack.org/runtime"]))
    marked = await store.delete(Container, "web-1", "demo")
    assert marked.metadata.deletion_timestamp is not None
    assert (await store.get(Container, "web-1", "demo")).metadata.deletion_timestamp
    marked.metadata.finalizers = []
    await store.update(marked)
    with pytest.raises(NotFoundError):
        await store.get(Container, "web-1", "demo")


async def test_delete_without_finalizers_is_immediate(store: RecordStore) -> None:
    await store.create(container("web-1"))
    await store.delete(Container, "web-1", "demo")
    with pytest.raises(NotFoundError):
        await store.get(Container, "web-1", "demo")


async def test_a_delete_may_add_a_finalizer_in_the_swap_that_marks_it_deleting(
    store: RecordStore,
) -> None:
    await store.create(container("bare"))
    await store.create(container("held", finalizers=["zun.openstack.org/runtime"]))
    bare = await store.delete(Container, "bare", "demo", finalizer="foregroundDeletion")
    assert bare.metadata.deletion_timestamp is not None
    assert (await store.get(Container, "bare", "demo")).metadata.finalizers == [
        "foregroundDeletion"
    ]
    await store.delete(Container, "held", "demo")
    held = await store.delete(Container, "held", "demo", finalizer="orphan")
    assert held.metadata.finalizers == ["zun.openstack.org/runtime", "orphan"]
    again = await store.delete(Container, "held", "demo", finalizer="orphan")
    assert again.metadata.resource_version == held.metadata.resource_version
    bare.metadata.finalizers = []
    await store.update(bare)
    with pytest.raises(NotFoundError):
        await store.get(Container, "bare", "demo")


async def test_list_by_project_selector_and_pages(store: RecordStore) -> None:
    for i in range(7):
        await store.create(
            container(f"web-{i}", labels={"parity": "even" if i % 2 == 0 else "odd"})
        )
    await store.create(container("other", project="elsewhere"))
    assert len((await store.list(Container)).items) == 8
    assert len((await store.list(Container, "demo")).items) == 7
    evens = await store.list(Container, "demo", selector="parity=even")
    assert [o.name for o in evens.items] == ["web-0", "web-2", "web-4", "web-6"]
    names, token = [], None
    while True:
        page = await store.list(Container, "demo", limit=3, continue_token=token)
        names += [o.name for o in page.items]
        if not (token := page.continue_token):
            break
        await store.create(container(f"late-{len(names)}"))
    assert names == [f"web-{i}" for i in range(7)]


async def test_lists_larger_than_grpcs_default_message_size_are_read(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gRPC's default receive limit is 4 MiB; a project's Containers or Events outgrow it (the
    long chaos run listed 4.5 MB of Events). Listing, paged or not, still reads all of it, and
    a list without a limit is read in pages (here of 4) at one revision."""
    monkeypatch.setattr(records, "LIST_PAGE", 4)
    big = "x" * 900_000  # under etcd's 1.5 MiB request limit; six make 5.4 MB
    for i in range(6):
        obj = container(f"big-{i}")
        obj.spec.env = [EnvVar(name="PAD", value=big)]
        await store.create(obj)
    assert len((await store.list(Container, "demo")).items) == 6
    assert len((await store.list(Container, "demo", limit=5)).items) == 5
    kvs, _ = await store.list_raw(kind_prefix(Container.KIND, "demo"))
    assert len(kvs) == 6


async def test_list_selector_syntax_errors_name_the_field(store: RecordStore) -> None:
    with pytest.raises(InvalidError, match="labelSelector"):
        await store.list(Container, selector="a in (b")


async def test_txn_compares_every_key(kv: KV) -> None:
    ok = await kv.commit(Txn(compares=[("/a", 0)], puts=[("/a", b"1"), ("/b", b"2")]))
    assert ok.succeeded
    stale = await kv.commit(Txn(compares=[("/a", 0)], puts=[("/c", b"3")]))
    assert not stale.succeeded
    current = stale.current["/a"]
    assert current is not None and current.value == b"1"
    assert await kv.get("/c") is None


async def test_commit_many_is_independent_per_txn(kv: KV) -> None:
    await kv.commit(Txn(puts=[("/x", b"0")]))
    results = await kv.commit_many(
        [Txn(compares=[("/x", 999)], puts=[("/x", b"1")]), Txn(puts=[("/y", b"1")])]
    )
    assert [r.succeeded for r in results] == [False, True]
    assert (await kv.get("/y")) is not None


async def test_watch_from_revision_sees_every_change_in_order(kv: KV) -> None:
    start = await kv.revision() + 1
    for i in range(5):
        await kv.commit(Txn(puts=[(f"/w/{i}", b"v")]))
    await kv.commit(Txn(deletes=["/w/0"]))
    await kv.commit(Txn(puts=[("/elsewhere", b"v")]))
    seen: list[tuple[EventType, str]] = []

    async def collect() -> None:
        async for batch in kv.watch("/w/", start):
            seen.extend((e.type, e.key) for e in batch)
            if len(seen) == 6:
                return

    await asyncio.wait_for(collect(), 5)
    assert seen == [(EventType.PUT, f"/w/{i}") for i in range(5)] + [(EventType.DELETE, "/w/0")]


async def test_watch_of_compacted_revision_says_so(kv: KV) -> None:
    for i in range(3):
        await kv.commit(Txn(puts=[("/c", str(i).encode())]))
    now = await kv.revision()
    await kv.compact(now)
    with pytest.raises(CompactedError):
        async for _ in kv.watch("/c", now - 1):
            pass


async def test_lease_keys_go_with_the_lease(kv: KV) -> None:
    lease = await kv.grant_lease(30)
    assert await kv.keep_alive(lease) > 0
    await kv.commit(Txn(compares=[("/leader", 0)], puts=[("/leader", b"me")], lease=lease))
    await kv.revoke_lease(lease)
    assert await kv.get("/leader") is None
    assert await kv.keep_alive(lease) == 0


async def test_status_writes_from_a_cached_value_batch_and_keep_spec(store: RecordStore) -> None:
    objs = [await store.create(container(f"b-{i}")) for i in range(30)]
    raws = [await store.kv.get(f"/zun/registry/containers/demo/b-{i}") for i in range(30)]
    for obj in objs:
        obj.spec.image = "sneaky"
        obj.status.phase = "Running"
    written = await asyncio.gather(
        *(store.update_status(o, stored=r.value) for o, r in zip(objs, raws, strict=True) if r)
    )
    assert len({w.metadata.resource_version for w in written}) >= 1
    for i in range(30):
        stored = await store.get(Container, f"b-{i}", "demo")
        assert stored.status.phase == "Running"
        assert stored.spec.image == "busybox"
    stale = objs[0]
    with pytest.raises(ConflictError):
        await store.update_status(stale, stored=raws[0].value if raws[0] else b"")


async def test_batched_writes_to_one_key_never_share_a_request(kv: KV) -> None:
    batcher = TxnBatcher(kv, max_batch=10)
    results = await asyncio.gather(
        *(batcher.commit(Txn(puts=[("/same", str(i).encode())])) for i in range(25))
    )
    assert all(r.succeeded for r in results)
    assert len({r.revision for r in results}) == 25


async def test_a_fenced_store_writes_only_while_its_leader_key_holds(kv: KV) -> None:
    def replica(identity: str) -> LeaderElector:
        return LeaderElector(kv, metrics=Metrics(), name="fence-contract", identity=identity)

    a = replica("a")
    assert await a._try_acquire()
    fenced = RecordStore(kv).fenced(a.fence)
    made = await fenced.create(container("web-1"))
    made.status.phase = "Running"
    made = await fenced.update_status(made)
    # a's lease expires (revoked here) and b wins before a's renew loop has noticed
    await kv.revoke_lease(a._lease)
    b = replica("b")
    assert await b._try_acquire()
    made.status.phase = "Stopped"
    with pytest.raises(FencedError, match="refused by etcd"):
        await fenced.update_status(made)
    assert a.fence.lost.is_set()
    with pytest.raises(FencedError, match="not the leader"):
        await fenced.create(container("web-2"))
    plain = RecordStore(kv)
    assert (await plain.get(Container, "web-1", "demo")).status.phase == "Running"
    assert [c.name for c in (await plain.list(Container, "demo")).items] == ["web-1"]
    # the new leader's writes, batched or not, apply; a stale one still gets ConflictError
    theirs = RecordStore(kv).fenced(b.fence)
    results = await theirs.kv.commit_many(
        [Txn(puts=[("/fence/x", b"1")]), Txn(compares=[("/fence/y", 7)], puts=[("/fence/y", b"")])]
    )
    assert [r.succeeded for r in results] == [True, False]
    assert set(results[1].current) == {"/fence/y"}
    await kv.delete_prefix("/fence/")
    await kv.revoke_lease(b._lease)
