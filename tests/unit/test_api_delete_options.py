"""DELETE's propagation policy (query parameter or DeleteOptions body) on the in-memory store."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.models.container import Container
from zun_controller.models.deletion import FOREGROUND, ORPHAN
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

P = "/apis/zun.openstack.org/v1alpha1"
WEB = f"{P}/projects/demo/containers/web"
ORPHAN_BODY = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}


class Api:
    def __init__(self) -> None:
        self.kv = MemoryKV()
        self.store = RecordStore(self.kv)


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture
async def client(api: Api) -> httpx.AsyncClient:
    token = await Tokens(api.kv).create("admin", Role.ADMIN, [])
    c = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(api.store, release=False)),
        base_url="http://api",
        headers={"Authorization": f"Bearer {token}"},
    )
    web = {"kind": "Container", "metadata": {"name": "web"}, "spec": {"image": "x"}}
    assert (await c.post(f"{P}/projects/demo/containers", json=web)).status_code == 201
    return c


async def _delete(c: httpx.AsyncClient, path: str, body: Any = None, **params: str) -> Any:
    content = json.dumps(body).encode() if body is not None else None
    return await c.request("DELETE", path, params=params, content=content)


@pytest.mark.parametrize(
    ("how", "finalizer"),
    [
        ({"query": "Foreground"}, FOREGROUND),
        ({"body": ORPHAN_BODY}, ORPHAN),
        ({"query": "Orphan", "body": {"propagationPolicy": "Orphan"}}, ORPHAN),
    ],
)
async def test_foreground_and_orphan_keep_the_record_deleting_with_their_finalizer(
    api: Api, client: httpx.AsyncClient, how: dict[str, Any], finalizer: str
) -> None:
    params = {"propagationPolicy": how["query"]} if "query" in how else {}
    r = await _delete(client, WEB, how.get("body"), **params)
    assert r.status_code == 200, r.text
    stored = await api.store.get(Container, "web", "demo")
    assert stored.metadata.deletion_timestamp is not None
    assert stored.metadata.finalizers == [finalizer]


@pytest.mark.parametrize("body", [None, {}, {"propagationPolicy": "Background"}])
async def test_background_is_the_default_and_removes_a_record_without_finalizers(
    api: Api, client: httpx.AsyncClient, body: Any
) -> None:
    assert (await _delete(client, WEB, body)).status_code == 200
    assert (await client.get(WEB)).status_code == 404


@pytest.mark.parametrize(
    ("body", "params", "field"),
    [
        (None, {"propagationPolicy": "foreground"}, "propagationPolicy"),
        ({"propagationPolicy": "Cascade"}, {}, "propagationPolicy"),
        ({"propagationPolicy": 3}, {}, "propagationPolicy"),
        ({"propagationPolicy": "Orphan"}, {"propagationPolicy": "Foreground"}, "propagationPolicy"),
        ({"gracePeriodSeconds": 0}, {}, "gracePeriodSeconds"),
        ({"kind": "Container"}, {}, "kind"),
    ],
)
async def test_bad_delete_options_are_422_naming_the_field_and_delete_nothing(
    api: Api, client: httpx.AsyncClient, body: Any, params: dict[str, str], field: str
) -> None:
    before = await api.kv.revision()
    r = await _delete(client, WEB, body, **params)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == field
    assert await api.kv.revision() == before
    assert (await client.get(WEB)).status_code == 200


async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.request("DELETE", WEB, content=b"{")
    assert r.status_code == 400
    assert (await client.get(WEB)).status_code == 200
