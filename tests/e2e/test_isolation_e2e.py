"""Projects are isolated, through a running `zun-controller api` on real etcd: project A's
member gets 403/404 for every read and write in project B, a reader cannot write, and no list
or watch shows another project's names."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from zunctl_bed import ApiOnly

from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
P = "/apis/zun.openstack.org/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
def api(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[ApiOnly]:
    server = ApiOnly(tmp_path, own_etcd.url)
    yield server
    server.stop()


def ctr(name: str) -> dict[str, Any]:
    return {"kind": "Container", "metadata": {"name": name}, "spec": {"image": "zun-test/httpd:v1"}}


APP_SPEC = {"cluster": "c", "template": {"containers": [{"name": "w", "image": "x"}]}}
#: the other project-scoped kinds, each with one record made in both projects
OTHERS: dict[str, tuple[str, dict[str, Any]]] = {
    "applications": ("Application", APP_SPEC),
    "volumes": ("Volume", {}),
    "networks": ("Network", {}),
    "gitrepositories": ("GitRepository", {"url": "file:///nonexistent"}),
}


def rec(plural: str, name: str) -> dict[str, Any]:
    kind, spec = OTHERS[plural]
    return {"kind": kind, "metadata": {"name": name}, "spec": spec}


class Callers:
    def __init__(self, url: str, admin: str) -> None:
        self.url = url
        self.admin = self.as_(admin)

    def as_(self, token: str) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.url, headers=auth, timeout=30)

    async def token(self, name: str, role: str, project: str) -> httpx.AsyncClient:
        body = {"name": name, "role": role, "projects": [project]}
        made = await self.admin.post(f"{P}/tokens", json=body)
        assert made.status_code == 201, made.text
        return self.as_(made.json()["token"])


@pytest.fixture
async def callers(api: ApiOnly) -> AsyncIterator[Callers]:
    c = Callers(api.url, api.token)
    for project in ("a", "b"):
        await c.admin.post(f"{P}/projects", json={"kind": "Project", "metadata": {"name": project}})
        await c.admin.post(f"{P}/projects/{project}/containers", json=ctr(f"{project}-web"))
        for plural in OTHERS:
            made = await c.admin.post(
                f"{P}/projects/{project}/{plural}", json=rec(plural, f"{project}-x")
            )
            assert made.status_code == 201, made.text
    yield c
    await c.admin.aclose()


def every_request_in_b() -> list[tuple[str, str, dict[str, Any]]]:
    b = f"{P}/projects/b/containers"
    web = f"{b}/b-web"
    body = {**ctr("b-web"), "metadata": {"name": "b-web", "resourceVersion": "1"}}
    return [
        ("GET", b, {}),
        ("GET", f"{b}?watch=true&timeoutSeconds=1", {}),
        ("POST", b, {"json": ctr("intruder")}),
        ("GET", web, {}),
        ("GET", f"{web}/status", {}),
        ("PUT", web, {"json": body}),
        ("PATCH", web, {"content": json.dumps({"spec": {"image": "x"}}), "headers": MERGE}),
        ("DELETE", web, {}),
        ("GET", f"{web}/log", {}),
        ("POST", f"{web}/exec", {"json": {"command": ["true"]}}),
        ("GET", f"{P}/projects/b", {}),
        ("GET", f"{P}/quotas/b", {}),
        ("PUT", f"{P}/projects/b", {"json": {"kind": "Project", "metadata": {"name": "b"}}}),
        ("DELETE", f"{P}/projects/b", {}),
        *others_in_b(),
    ]


def others_in_b() -> list[tuple[str, str, dict[str, Any]]]:
    out: list[tuple[str, str, dict[str, Any]]] = []
    for plural in OTHERS:
        items, item = f"{P}/projects/b/{plural}", f"{P}/projects/b/{plural}/b-x"
        out += [
            ("GET", items, {}),
            ("POST", items, {"json": rec(plural, "intruder")}),
            ("GET", item, {}),
            ("PATCH", item, {"content": json.dumps({"spec": {}}), "headers": MERGE}),
            ("DELETE", item, {}),
        ]
    return out


async def snapshot_of_b(admin: httpx.AsyncClient) -> list[Any]:
    urls = [f"{P}/projects/b/containers/b-web"]
    urls += [f"{P}/projects/b/{plural}/b-x" for plural in OTHERS]
    return [(await admin.get(url)).json() for url in urls]


async def test_member_of_a_is_refused_everything_in_b(callers: Callers) -> None:
    member = await callers.token("alice", "member", "a")
    before = await snapshot_of_b(callers.admin)
    for method, url, kw in every_request_in_b():
        answer = await member.request(method, url, **kw)
        assert answer.status_code in (403, 404), (method, url, answer.status_code, answer.text)
        for name in ("b-web", "b-x"):
            assert name not in answer.text or "may not" in answer.json()["message"]
    assert await snapshot_of_b(callers.admin) == before
    for plural in ("containers", *OTHERS):
        gone = await callers.admin.get(f"{P}/projects/b/{plural}/intruder")
        assert gone.status_code == 404, plural
    await member.aclose()


async def test_lists_and_watches_never_show_other_projects(callers: Callers) -> None:
    member = await callers.token("alice", "member", "a")
    across = (await member.get(f"{P}/containers")).json()["items"]
    assert [o["metadata"]["name"] for o in across] == ["a-web"]
    for plural in OTHERS:
        listed = (await member.get(f"{P}/{plural}")).json()["items"]
        assert [o["metadata"]["name"] for o in listed] == ["a-x"], plural
    watched = await member.get(f"{P}/containers?watch=true&timeoutSeconds=1")
    assert "b-web" not in watched.text and "a-web" in watched.text
    projects = (await member.get(f"{P}/projects")).json()["items"]
    assert [o["metadata"]["name"] for o in projects] == ["a"]
    assert (await member.get(f"{P}/tokens")).status_code == 403
    assert (await member.get(f"{P}/hosts")).status_code == 403
    await member.aclose()


async def test_a_reader_reads_but_cannot_write(callers: Callers) -> None:
    reader = await callers.token("rita", "reader", "a")
    web = f"{P}/projects/a/containers/a-web"
    assert (await reader.get(web)).status_code == 200
    current = (await reader.get(web)).json()
    writes = [
        ("POST", f"{P}/projects/a/containers", {"json": ctr("more")}),
        ("PUT", web, {"json": current}),
        ("PATCH", web, {"content": json.dumps({"spec": {"image": "x"}}), "headers": MERGE}),
        ("DELETE", web, {}),
        ("POST", f"{web}/exec", {"json": {"command": ["true"]}}),
    ]
    for method, url, kw in writes:
        answer = await reader.request(method, url, **kw)
        assert answer.status_code == 403, (method, url, answer.text)
    assert (await reader.get(web)).json() == current
    await reader.aclose()
