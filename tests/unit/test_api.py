"""REST semantics on the in-memory store: CRUD, errors in one shape, roles, watch, quotas."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.engine.events import EventRecorder
from zun_controller.metrics import Metrics
from zun_controller.models.event import Event, EventSpec
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

P = "/apis/zun.openstack.org/v1alpha1"


def ctr(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "Container", "metadata": {"name": name}, "spec": {"image": "x", **spec}}


class Api:
    def __init__(self, kv: MemoryKV) -> None:
        self.kv = kv
        self.store = RecordStore(kv)
        self.recorder = EventRecorder(self.store, Metrics())
        self.app = create_app(self.store, release=False, events=self.recorder)
        self.tokens = Tokens(kv)

    async def events(self, project: str) -> list[EventSpec]:
        await self.recorder.flush()
        return [e.spec for e in (await self.store.list(Event, project=project)).items]

    async def client(self, role: Role = Role.ADMIN, *projects: str) -> httpx.AsyncClient:
        token = await self.tokens.create(f"t{len(projects)}{role}", role, list(projects))
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    yield Api(MemoryKV())


async def test_create_get_list_replace_patch_delete(api: Api) -> None:
    c = await api.client()
    r = await c.post(f"{P}/projects/demo/containers", json=ctr("web", labels={}))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["metadata"]["project"] == "demo" and body["metadata"]["generation"] == 1
    assert (await c.post(f"{P}/projects/demo/containers", json=ctr("web"))).status_code == 409
    got = (await c.get(f"{P}/projects/demo/containers/web")).json()
    got["spec"]["image"] = "y"
    r = await c.put(f"{P}/projects/demo/containers/web", json=got)
    assert r.status_code == 200 and r.json()["metadata"]["generation"] == 2
    stale = await c.put(f"{P}/projects/demo/containers/web", json=got)
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    r = await c.patch(
        f"{P}/projects/demo/containers/web",
        content=json.dumps({"metadata": {"labels": {"tier": "web"}}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {"tier": "web"}
    await c.post(f"{P}/projects/demo/containers", json=ctr("db"))
    sel = (await c.get(f"{P}/projects/demo/containers?labelSelector=tier=web")).json()
    assert [o["metadata"]["name"] for o in sel["items"]] == ["web"]
    page = (await c.get(f"{P}/projects/demo/containers?limit=1")).json()
    assert len(page["items"]) == 1 and page["metadata"]["continue"]
    rest = await c.get(
        f"{P}/projects/demo/containers?limit=1&continue={page['metadata']['continue']}"
    )
    assert [o["metadata"]["name"] for o in rest.json()["items"]] == ["web"]
    assert (await c.delete(f"{P}/projects/demo/containers/web")).status_code == 200
    assert (await c.get(f"{P}/projects/demo/containers/web")).json()["code"] == 404


async def test_invalid_body_is_422_with_field_paths_and_writes_nothing(api: Api) -> None:
    c = await api.client()
    before = await api.kv.revision()
    r = await c.post(
        f"{P}/projects/demo/containers",
        json=ctr("web", ports=[{"containerPort": 1, "hostPort": 70000}]),
    )
    body = r.json()
    assert r.status_code == 422 and body["kind"] == "Status" and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.ports[0].hostPort"
    assert (await c.post(f"{P}/projects/demo/containers", content=b"{")).status_code == 400
    wrong = ctr("web")
    wrong["metadata"]["project"] = "other"
    assert (await c.post(f"{P}/projects/demo/containers", json=wrong)).status_code == 422
    assert await api.kv.revision() == before


async def test_tokens_roles_and_projects(api: Api) -> None:
    admin = await api.client()
    await admin.post(f"{P}/projects/b/containers", json=ctr("secret"))
    anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://api")
    assert (await anon.get(f"{P}/projects/a/containers")).status_code == 401
    member = await api.client(Role.MEMBER, "a")
    reader = await api.client(Role.READER, "a")
    assert (await member.post(f"{P}/projects/a/containers", json=ctr("web"))).status_code == 201
    assert (await member.get(f"{P}/projects/b/containers")).status_code == 403
    assert (await member.get(f"{P}/projects/b/containers/secret")).status_code == 403
    assert (await member.delete(f"{P}/projects/b/containers/secret")).status_code == 403
    assert (await reader.get(f"{P}/projects/a/containers/web")).status_code == 200
    assert (await reader.post(f"{P}/projects/a/containers", json=ctr("x"))).status_code == 403
    assert (await reader.delete(f"{P}/projects/a/containers/web")).status_code == 403
    across = (await member.get(f"{P}/containers")).json()["items"]
    assert sorted(o["metadata"]["name"] for o in across) == ["web"]
    r = await member.post(f"{P}/projects/a/containers", json=ctr("r", runtime="runsc"))
    assert r.status_code == 403 and "spec.runtime" in r.json()["message"]
    await admin.post(f"{P}/projects/a/containers", json=ctr("k", runtime="runc"))
    kept = (await member.get(f"{P}/projects/a/containers/k")).json()
    kept["spec"]["image"] = "z"
    put = await member.put(f"{P}/projects/a/containers/k", json=kept)
    assert put.status_code == 200
    kept = put.json()
    kept["spec"]["runtime"] = "kata"
    changed = await member.put(f"{P}/projects/a/containers/k", json=kept)
    assert changed.status_code == 403 and "spec.runtime" in changed.json()["message"]
    del kept["spec"]["runtime"]  # a spec re-sent without it keeps it
    cleared = await member.put(f"{P}/projects/a/containers/k", json=kept)
    assert cleared.status_code == 200 and cleared.json()["spec"]["runtime"] == "runc"
    assert (await member.post(f"{P}/hosts", json={})).status_code == 403
    r = await member.post(f"{P}/tokens", json={"name": "x", "role": "admin"})
    assert r.status_code == 403
    r = await admin.post(f"{P}/tokens", json={"name": "x", "role": "reader", "projects": ["a"]})
    assert r.status_code == 201 and r.json()["token"].startswith("zun_")
    assert r.json()["token"].encode() not in b"".join(
        kv.value for kv in (await api.kv.range("/")).kvs
    )


async def test_status_is_read_only(api: Api) -> None:
    c = await api.client()
    await c.post(f"{P}/projects/demo/containers", json=ctr("web"))
    assert (await c.get(f"{P}/projects/demo/containers/web/status")).status_code == 200
    r = await c.put(f"{P}/projects/demo/containers/web/status", json={})
    assert r.status_code == 405 and r.json()["kind"] == "Status"


async def test_watch_streams_events_and_reports_compaction(api: Api) -> None:
    c = await api.client()
    await c.post(f"{P}/projects/demo/containers", json=ctr("web"))
    await c.delete(f"{P}/projects/demo/containers/web")
    r = await c.get(f"{P}/projects/demo/containers?watch=true&resourceVersion=1&timeoutSeconds=0.2")
    types = [json.loads(line)["type"] for line in r.text.splitlines()]
    assert types == ["ADDED", "DELETED"]
    await api.kv.compact(await api.kv.revision())
    r = await c.get(f"{P}/projects/demo/containers?watch=true&resourceVersion=1&timeoutSeconds=1")
    event = json.loads(r.text.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


@pytest.mark.parametrize("rv", ["9223373731714924545", "-1", "abc", "1.5", "\u00b2"])
async def test_a_watch_from_a_revision_etcd_cannot_hold_is_422(api: Api, rv: str) -> None:
    """Found by schemathesis: a resourceVersion past int64 broke the stream mid-answer."""
    c = await api.client()
    query = {"watch": "true", "resourceVersion": rv}
    r = await c.get(f"{P}/projects/demo/containers", params=query)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "query.resourceVersion"


async def test_quota_admits_up_to_its_limit_and_shows_usage(api: Api) -> None:
    c = await api.client()
    quota = {"kind": "Quota", "metadata": {"name": "demo"}, "spec": {"limits": {"containers": 2}}}
    assert (await c.post(f"{P}/quotas", json=quota)).status_code == 201
    codes = [
        (await c.post(f"{P}/projects/demo/containers", json=ctr(f"c{i}"))).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 403]
    assert (await c.get(f"{P}/quotas/demo")).json()["status"]["used"]["containers"] == 2
    [event] = await api.events("demo")
    assert (event.type, event.reason) == ("Warning", "QuotaExceeded")
    assert (event.involved_object.kind, event.involved_object.name) == ("Container", "c2")
    assert event.message == "create refused: exceeded quota of project 'demo': containers: 3 > 2"
    await c.delete(f"{P}/projects/demo/containers/c0")
    await api.app.state.zun.quota.recompute("demo")
    assert (await c.get(f"{P}/quotas/demo")).json()["status"]["used"]["containers"] == 1


async def test_the_app_writes_quota_events_while_it_runs(api: Api) -> None:
    c = await api.client()
    quota = {"kind": "Quota", "metadata": {"name": "demo"}, "spec": {"limits": {"volumes": 0}}}
    assert (await c.post(f"{P}/quotas", json=quota)).status_code == 201
    vol = {"kind": "Volume", "metadata": {"name": "data"}, "spec": {}}
    async with api.app.router.lifespan_context(api.app):
        assert (await c.post(f"{P}/projects/demo/volumes", json=vol)).status_code == 403
        async with asyncio.timeout(5):
            while not (await api.store.list(Event, project="demo")).items:  # noqa: ASYNC110 - the writer has no hook to await
                await asyncio.sleep(0.01)
    [event] = (await api.store.list(Event, project="demo")).items
    assert (event.spec.reason, event.spec.involved_object.kind) == ("QuotaExceeded", "Volume")


async def test_quota_charges_resizes_in_the_same_write(api: Api) -> None:
    c = await api.client()
    limits = {"replicas": 5, "cpu": 1}
    quota = {"kind": "Quota", "metadata": {"name": "demo"}, "spec": {"limits": limits}}
    assert (await c.post(f"{P}/quotas", json=quota)).status_code == 201
    app = {
        "kind": "Application",
        "metadata": {"name": "shop"},
        "spec": {
            "cluster": "local",
            "replicas": 3,
            "template": {"containers": [{"name": "w", "image": "x", "resources": {"cpu": "200m"}}]},
        },
    }
    assert (await c.post(f"{P}/projects/demo/applications", json=app)).status_code == 201
    url, merge = f"{P}/projects/demo/applications/shop", "application/merge-patch+json"

    async def scale(n: int) -> httpx.Response:
        body = json.dumps({"spec": {"replicas": n}})
        return await c.patch(url, content=body, headers={"Content-Type": merge})

    refused = await scale(6)
    assert refused.status_code == 403 and "replicas: 6 > 5" in refused.json()["message"]
    assert (await c.get(url)).json()["spec"]["replicas"] == 3
    [event] = await api.events("demo")
    assert (event.reason, event.involved_object.name) == ("QuotaExceeded", "shop")
    assert event.involved_object.uid == (await c.get(url)).json()["metadata"]["uid"]
    assert event.message.startswith("update refused: exceeded quota of project 'demo': ")
    assert (await scale(5)).status_code == 200
    used = (await c.get(f"{P}/quotas/demo")).json()["status"]["used"]
    assert (used["replicas"], used["cpu"], used["applications"]) == (5, 1.0, 1)
    assert (await scale(1)).status_code == 200
    assert (await c.get(f"{P}/quotas/demo")).json()["status"]["used"]["replicas"] == 1


async def test_openapi_document_lists_every_path(api: Api) -> None:
    c = await api.client()
    paths = (await c.get("/openapi.json")).json()["paths"]
    assert f"{P}/projects/{{project}}/containers/{{name}}" in paths
    assert set(paths[f"{P}/hosts/{{name}}"]) == {"get", "put", "patch", "delete"}
    assert (await c.get("/healthz")).json() == {"status": "ok"}
