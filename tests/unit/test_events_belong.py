"""Events belong to an object, not a name: the rule, and the API's field selector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.engine.events import EventRecorder
from zun_controller.metrics import Metrics
from zun_controller.models.base import ObjectMeta
from zun_controller.models.container import Container
from zun_controller.models.event import Event, EventSpec, ObjectReference, involves
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

P = "/apis/zun.openstack.org/v1alpha1"


def ref(uid: str | None, name: str = "web", kind: str = "Container") -> ObjectReference:
    return ObjectReference(kind=kind, name=name, project="demo", uid=uid)


def test_an_event_is_about_the_record_of_its_uid() -> None:
    assert involves(ref("u1"), "Container", "web", "u1")
    assert not involves(ref("u1"), "Container", "web", "u2")
    assert not involves(ref("u1", name="db"), "Container", "web", "u1")
    assert not involves(ref("u1", kind="Application"), "Container", "web", "u1")


def test_an_event_without_uid_is_matched_by_name() -> None:
    assert involves(ref(None), "Container", "web", "u2")
    assert involves(ref("u1"), "Container", "web", None)


class Bed:
    def __init__(self) -> None:
        kv = MemoryKV()
        self.store = RecordStore(kv)
        self.recorder = EventRecorder(self.store, Metrics())
        self.app = create_app(self.store, release=False, events=self.recorder)
        self.tokens = Tokens(kv)

    async def client(self) -> httpx.AsyncClient:
        token = await self.tokens.create("admin", Role.ADMIN, [])
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    yield Bed()


async def _web(bed: Bed, c: httpx.AsyncClient) -> Container:
    body = {"kind": "Container", "metadata": {"name": "web"}, "spec": {"image": "x"}}
    assert (await c.post(f"{P}/projects/demo/containers", json=body)).status_code == 201
    return await bed.store.get(Container, "web", "demo")


async def _legacy_event(bed: Bed) -> None:
    """An Event as written before Events carried the uid."""
    now = datetime.now(UTC)
    spec = EventSpec(
        involved_object=ref(None), reason="Old", first_timestamp=now, last_timestamp=now
    )
    await bed.store.create(Event(metadata=ObjectMeta(name="web-old", project="demo"), spec=spec))


async def test_a_new_record_of_an_old_name_lists_none_of_the_old_ones_events(bed: Bed) -> None:
    c = await bed.client()
    first = await _web(bed, c)
    bed.recorder.record(first, "Warning", "Failed", "the first one failed")
    assert (await c.delete(f"{P}/projects/demo/containers/web")).status_code in (200, 202)
    second = await _web(bed, c)
    assert second.metadata.uid != first.metadata.uid
    bed.recorder.record(second, "Normal", "Started", "the second one started")
    await bed.recorder.flush()
    await _legacy_event(bed)

    def reasons(answer: httpx.Response) -> set[str]:
        assert answer.status_code == 200, answer.text
        return {e["spec"]["reason"] for e in answer.json()["items"]}

    selector = "involvedObject.kind=Container,involvedObject.name=web"
    listed = await c.get(f"{P}/projects/demo/events", params={"fieldSelector": selector})
    assert reasons(listed) == {"Failed", "Started", "Old"}
    for uid, want in (
        (second.metadata.uid, {"Started", "Old"}),
        (first.metadata.uid, {"Failed", "Old"}),
    ):
        mine = await c.get(
            f"{P}/projects/demo/events",
            params={"fieldSelector": f"{selector},involvedObject.uid=={uid}"},
        )
        assert reasons(mine) == want


@pytest.mark.parametrize(
    ("plural", "selector", "reason"),
    [
        ("events", "involvedObject.namespace=demo", "is not one of"),
        ("events", "involvedObject.name!=web", "is not one of"),
        ("events", "reason", "is not one of"),
        ("containers", "involvedObject.name=web", "not supported on containers"),
    ],
)
async def test_a_bad_field_selector_is_a_422_naming_it(
    bed: Bed, plural: str, selector: str, reason: str
) -> None:
    c = await bed.client()
    answer = await c.get(f"{P}/projects/demo/{plural}", params={"fieldSelector": selector})
    assert answer.status_code == 422, answer.text
    assert "fieldSelector" in answer.text and reason in answer.text


async def test_a_repeat_for_a_new_record_of_the_name_is_its_own_event(bed: Bed) -> None:
    """The same reason and message about two records of one name are two Events: the new
    record's count starts at 1, not at the old one's."""
    old = Container(
        metadata=ObjectMeta(name="web", project="demo", uid="u-old"), spec={"image": "x"}
    )
    new = old.model_copy(update={"metadata": old.metadata.model_copy(update={"uid": "u-new"})})
    for _ in range(3):
        bed.recorder.record(old, "Warning", "Failed", "no such image")
    bed.recorder.record(new, "Warning", "Failed", "no such image")
    await bed.recorder.flush()
    events = (await bed.store.list(Event, "demo")).items
    counts = {e.spec.involved_object.uid: e.spec.count for e in events}
    assert counts == {"u-old": 3, "u-new": 1}
