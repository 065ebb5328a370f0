"""The chaos auditor's "dangling owners" finding, on the in-memory store."""

from __future__ import annotations

from typing import Any

from benchmarks.chaos.audit import Findings, dangling_owners
from zun_controller.models.base import Resource
from zun_controller.models.registry import parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore


def record(kind: str, name: str, project: str | None, *owners: dict[str, str]) -> Resource:
    spec: dict[str, Any] = {"image": "busybox"} if kind == "Container" else {}
    meta = {"name": name, "project": project, "ownerReferences": list(owners)}
    return parse(
        {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}
    )


def ref(owner: Resource) -> dict[str, str]:
    return {"kind": owner.KIND.kind, "name": owner.name, "uid": owner.metadata.uid or ""}


async def test_records_whose_owner_is_gone_or_another_are_found_and_nothing_else() -> None:
    store = RecordStore(MemoryKV())
    owner = await store.create(record("Container", "owner", "demo"))
    secret = await store.create(record("Secret", "keeper", None))
    await store.create(record("Container", "kept", "demo", ref(owner), ref(secret)))
    await store.create(record("Container", "plain", "demo"))
    await store.create(
        record("Container", "unknown", "demo", {"kind": "Gadget", "name": "g", "uid": "u"})
    )
    gone = {"kind": "Application", "name": "gone", "uid": "u-gone"}
    await store.create(record("Container", "stray", "demo", gone))
    await store.create(record("Secret", "stray-secret", None, {**ref(secret), "uid": "u-old"}))
    await store.create(record("Container", "elsewhere", "other", gone))
    assert await dangling_owners(store, "demo") == ["Container/stray", "Secret/stray-secret"]


async def test_a_clean_store_has_no_finding_and_the_finding_is_counted() -> None:
    store = RecordStore(MemoryKV())
    owner = await store.create(record("Container", "owner", "demo"))
    await store.create(record("Container", "child", "demo", ref(owner)))
    found = Findings(dangling_owners=await dangling_owners(store, "demo"))
    assert found.clean() and found.counts()["dangling_owners"] == 0
    await store.delete(type(owner), "owner", "demo")
    found = Findings(dangling_owners=await dangling_owners(store, "demo"))
    assert not found.clean() and found.counts()["dangling_owners"] == 1
