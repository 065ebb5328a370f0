"""Who owns a record (models/ownership.py), and the writers that respect it: a GitRepository
(in-memory store, a real git repository) and the bridge's downward path (in-memory store)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
from test_gitops import Repo, add_repo, container_doc, repo_status, until

from zun_controller.bridge.operator import Downward
from zun_controller.engine.manager import Manager
from zun_controller.errors import NotFoundError
from zun_controller.gitops.policy import GitPolicy
from zun_controller.gitops.setup import register_gitops
from zun_controller.metrics import Metrics
from zun_controller.models.base import ObjectMeta, OwnerReference
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.ownership import (
    BRIDGE,
    BY_HAND,
    adopts,
    applyset,
    conflict,
    gitops,
    owner_of,
)
from zun_controller.models.registry import parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

HAND_IMAGE = "by-hand:1"


def meta(**fields: Any) -> ObjectMeta:
    return ObjectMeta.model_validate({"name": "web", "project": "demo", **fields})


def test_the_owner_is_read_from_the_records_own_markers() -> None:
    assert owner_of(meta()) == BY_HAND
    assert owner_of(meta(labels={"zun.openstack.org/gitops-repository": "site"})) == gitops(
        "site", "demo"
    )
    assert owner_of(meta(labels={"zun.openstack.org/applyset": "web"})) == applyset("web")
    assert owner_of(meta(annotations={"zun.openstack.org/source": "kubernetes"})) == BRIDGE
    ref = OwnerReference(kind="Application", name="shop", uid="u1")
    owned = meta(owner_references=[ref], labels={"zun.openstack.org/applyset": "web"})
    assert str(owner_of(owned)) == "Application demo/shop"
    assert str(gitops("site", "demo")) == "GitRepository demo/site"
    assert adopts({"zun.openstack.org/adopt": "true"}) and not adopts({})
    assert conflict("containers/demo/web", BY_HAND) == (
        "containers/demo/web: owned by no writer (made by hand through the API); "
        'not changed (annotation zun.openstack.org/adopt: "true" adopts it)'
    )


@pytest.fixture
async def world(tmp_path: Path) -> Any:
    store = RecordStore(MemoryKV())
    manager = Manager(metrics=Metrics(), health_port=None)
    policy = GitPolicy.allowing("https,ssh,file")  # the admin setting local repositories need
    register_gitops(manager, store, manager.metrics, tmp_path / "cache", git_policy=policy)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    yield store, Repo(tmp_path / "repo")
    stop.set()
    await asyncio.wait_for(task, 10)


async def hand_made(store: RecordStore, name: str = "web") -> Container:
    obj = parse({**container_doc(name, HAND_IMAGE), "metadata": {"name": name, "project": "demo"}})
    made = await store.create(obj)
    assert isinstance(made, Container)
    return made


async def test_a_repository_never_takes_over_a_hand_made_record(
    world: tuple[RecordStore, Repo],
) -> None:
    store, repo = world
    before = await hand_made(store)
    repo.commit({"web.yaml": [container_doc("web"), container_doc("api")]})
    await add_repo(store, repo)

    async def conflict_reported() -> str | None:
        cond = (await repo_status(store)).status.condition("Ready")
        return cond.message if cond and cond.reason == "OwnershipConflict" else None

    message = await until(conflict_reported)
    assert message.startswith("containers/demo/web: owned by no writer (made by hand")
    after = await store.get(Container, "web", "demo")
    assert after.metadata.resource_version == before.metadata.resource_version  # untouched
    assert after.spec.image == HAND_IMAGE and after.metadata.labels == {}
    assert (await store.get(Container, "api", "demo")).spec.image == "zun-test/httpd:v1"
    status = (await repo_status(store)).status
    assert status.applied == ["containers/demo/api"] and status.phase == "Conflict"

    async def warned() -> list[Event]:
        events = (await store.list(Event, "demo")).items
        return [e for e in events if e.spec.reason == "OwnershipConflict"]

    [event] = await until(warned)
    assert event.spec.involved_object.name == "site" and event.spec.type == "Warning"
    assert "owned by no writer" in event.spec.message

    gone = repo.commit({"web.yaml": None})  # the file goes: only what it made is pruned

    async def applied() -> bool:
        return (await repo_status(store)).status.last_applied_commit == gone

    await until(applied)
    assert (await store.get(Container, "web", "demo")).spec.image == HAND_IMAGE
    with pytest.raises(NotFoundError):
        await store.get(Container, "api", "demo")
    ready = (await repo_status(store)).status.condition("Ready")
    assert ready is not None and ready.reason == "Applied"


async def test_the_adopt_annotation_takes_a_record_over(world: tuple[RecordStore, Repo]) -> None:
    store, repo = world
    await hand_made(store)
    doc = container_doc("web")
    doc["metadata"]["annotations"] = {"zun.openstack.org/adopt": "true"}
    first = repo.commit({"web.yaml": [doc]})
    await add_repo(store, repo)

    async def applied(commit: str) -> bool:
        return (await repo_status(store)).status.last_applied_commit == commit

    await until(lambda: applied(first))
    taken = await store.get(Container, "web", "demo")
    assert taken.spec.image == "zun-test/httpd:v1"
    assert owner_of(taken.metadata) == gitops("site", "demo")
    second = repo.commit({"web.yaml": None})
    await until(lambda: applied(second))
    with pytest.raises(NotFoundError):  # adopted, so it is the repository's to prune
        await store.get(Container, "web", "demo")


class Patch:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}


def resource(name: str, image: str = "zun-test/httpd:v1", **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "demo", "annotations": annotations},
        "spec": {"image": image},
    }


async def test_the_bridge_reports_a_conflict_and_deletes_only_its_own() -> None:
    store = RecordStore(MemoryKV())
    before = await hand_made(store)
    down, patch = Downward(store), Patch()
    with pytest.raises(kopf.TemporaryError):
        await down.sync("Container", resource("web"), patch)
    assert patch.status["phase"] == "Conflict"
    [cond] = patch.status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Ready", "False", "OwnershipConflict")
    assert cond["message"].startswith("containers/demo/web: owned by no writer")
    after = await store.get(Container, "web", "demo")
    assert after.metadata.resource_version == before.metadata.resource_version
    await down.remove("Container", resource("web"))  # the custom resource goes: not the record
    assert (await store.get(Container, "web", "demo")).spec.image == HAND_IMAGE

    adopt = resource("web", **{"zun.openstack.org/adopt": "true"})
    await down.sync("Container", adopt, Patch())
    taken = await store.get(Container, "web", "demo")
    assert taken.spec.image == "zun-test/httpd:v1" and owner_of(taken.metadata) == BRIDGE
    await down.sync("Container", resource("own"), Patch())
    assert owner_of((await store.get(Container, "own", "demo")).metadata) == BRIDGE
