"""Zun v1 registries as PullSecret records, and a container create's `registry` and
`image_pull_policy` as `spec.imagePullSecrets` and `spec.imagePullPolicy`, on the in-memory
store: the records written, the shapes answered, the password never answered, the 400s."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.api.zunv1 import ZunV1Settings
from zun_controller.models.application import Application
from zun_controller.models.container import Container
from zun_controller.models.pullsecret import DOCKER_CONFIG_KEY, PullSecret
from zun_controller.models.registry import parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

V = {"OpenStack-API-Version": "container 1.40"}
PASSWORD = "s3cret-Pw"
REG = {"name": "private", "domain": "127.0.0.1:5443", "username": "alice", "password": PASSWORD}


class Bed:
    def __init__(self) -> None:
        self.store = RecordStore(MemoryKV())
        settings = ZunV1Settings(noauth=True, project="demo")
        self.app = create_app(self.store, None, release=False, zun_v1=settings)

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://localhost",
            headers={**V, **headers},
        )


@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    bed = Bed()
    async with bed.client() as client:
        client.bed = bed  # type: ignore[attr-defined]
        yield client


def _bed(c: httpx.AsyncClient) -> Bed:
    bed: Bed = c.bed  # type: ignore[attr-defined]
    return bed


async def _create(c: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await c.post("/v1/registries", json={"registry": {**REG, **fields}})
    assert r.status_code == 202, r.text
    shown: dict[str, Any] = r.json()["registry"]
    assert r.headers["Location"].endswith(f"/v1/registries/{shown['uuid']}")
    return shown


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    (err,) = r.json()["errors"]
    title: str = err["title"]
    return title


async def test_create_writes_a_pull_secret_and_never_answers_the_password(
    c: httpx.AsyncClient,
) -> None:
    shown = await _create(c)
    assert {k: shown[k] for k in ("name", "domain", "username", "password", "project_id")} == {
        "name": "private", "domain": "127.0.0.1:5443", "username": "alice",
        "password": "***", "project_id": "demo",
    }  # fmt: skip
    secret = await _bed(c).store.get(PullSecret, "private", "demo")
    assert secret.metadata.uid == shown["uuid"]
    assert secret.spec.credentials() == {"127.0.0.1:5443": ("alice", PASSWORD)}
    answers = [
        await c.get("/v1/registries"),
        await c.get("/v1/registries/private"),
        await c.get(f"/v1/registries/{shown['uuid']}"),
    ]
    for r in answers:
        assert r.status_code == 200 and PASSWORD not in r.text
    listed = answers[0].json()
    assert [r["uuid"] for r in listed["registries"]] == [shown["uuid"]] and listed["next"] is None
    assert answers[1].json() == answers[2].json() == {"registry": shown}


async def test_a_zun_name_that_is_no_dns_label_is_kept_and_found(c: httpx.AsyncClient) -> None:
    shown = await _create(c, name="My_Registry")
    assert shown["name"] == "My_Registry"
    got = (await c.get("/v1/registries/My_Registry")).json()["registry"]
    assert got["uuid"] == shown["uuid"]
    (secret,) = (await _bed(c).store.list(PullSecret, "demo")).items
    assert secret.name.startswith("zun-")


async def test_bad_bodies_are_400_naming_the_field(c: httpx.AsyncClient) -> None:
    cases = [
        ({"registry": {"name": "x", "username": "u", "password": "p"}}, "domain: required"),
        ({"registry": {**REG, "domain": "not a host"}}, "field/attribute domain"),
        ({"registry": {**REG, "password": ""}}, "field/attribute password"),
        ({"registry": {**REG, "username": "a:b"}}, "field/attribute username"),
        ({"registry": {**REG, "colour": "red"}}, "field/attribute colour"),
        ({"registry": {**REG, "name": "bad name!"}}, "Invalid name"),
        ({"domain": "x"}, '{"registry"'),
    ]
    for body, words in cases:
        assert words in _error(await c.post("/v1/registries", json=body), 400), body
    await _create(c)
    assert _error(await c.post("/v1/registries", json={"registry": REG}), 409)


async def test_update_rewrites_the_entry_and_delete_removes_the_record(
    c: httpx.AsyncClient,
) -> None:
    shown = await _create(c)
    patch = {"registry": {"password": "n3w-Pw", "domain": "127.0.0.1:6000", "name": "Renamed"}}
    r = await c.patch("/v1/registries/private", json=patch)
    assert r.status_code == 200 and "n3w-Pw" not in r.text
    got = r.json()["registry"]
    assert (got["uuid"], got["domain"], got["name"], got["password"]) == (
        shown["uuid"], "127.0.0.1:6000", "Renamed", "***"
    )  # fmt: skip
    secret = await _bed(c).store.get(PullSecret, "private", "demo")
    assert secret.spec.credentials() == {"127.0.0.1:6000": ("alice", "n3w-Pw")}
    assert _error(await c.patch("/v1/registries/Renamed", json={"registry": {}}), 400)
    assert (await c.delete("/v1/registries/Renamed")).status_code == 204
    assert (await _bed(c).store.list(PullSecret, "demo")).items == []
    assert "could not be found" in _error(await c.get("/v1/registries/Renamed"), 404)


async def test_a_pull_secret_written_elsewhere_shows_by_its_first_entry(
    c: httpx.AsyncClient,
) -> None:
    config = {"auths": {"https://index.docker.io/v1/": {"username": "bob", "password": "pw"},
                        "quay.io": {"username": "carol", "password": "pw2"}}}  # fmt: skip
    obj = parse({"kind": "PullSecret", "apiVersion": "zun.openstack.org/v1alpha1",
                 "metadata": {"name": "hub", "project": "demo"},
                 "spec": {"data": {DOCKER_CONFIG_KEY: json.dumps(config)}}})  # fmt: skip
    await _bed(c).store.create(obj)  # as zunctl or GitOps would write it
    got = (await c.get("/v1/registries/hub")).json()["registry"]
    assert (got["domain"], got["username"], got["password"]) == ("docker.io", "bob", "***")
    r = await c.patch("/v1/registries/hub", json={"registry": {"password": "pw3"}})
    assert r.status_code == 200
    secret = await _bed(c).store.get(PullSecret, "hub", "demo")
    assert secret.spec.credentials() == {"docker.io": ("bob", "pw3"), "quay.io": ("carol", "pw2")}


async def test_readers_get_403_and_other_projects_are_not_seen() -> None:
    bed = Bed()
    tokens = Tokens(bed.store.kv)
    reader = await tokens.create("r", Role.READER, ["demo"])
    other = await tokens.create("o", Role.MEMBER, ["other"])
    async with bed.client() as c:
        await _create(c)
    async with bed.client(**{"X-Auth-Token": reader}) as c:
        assert _error(await c.get("/v1/registries"), 403)
        assert _error(await c.post("/v1/registries", json={"registry": REG}), 403)
    async with bed.client(**{"X-Auth-Token": other}) as c:
        assert (await c.get("/v1/registries")).json()["registries"] == []
        assert _error(await c.get("/v1/registries/private"), 404)
        assert _error(await c.get("/v1/registries", params={"all_projects": "true"}), 403)


async def test_run_with_registry_and_pull_policy_writes_them_on_the_record(
    c: httpx.AsyncClient,
) -> None:
    shown = await _create(c, name="My_Registry")
    image = "127.0.0.1:5443/team/app:v1"
    body = {"name": "web", "image": image, "registry": "My_Registry",
            "image_pull_policy": "always"}  # fmt: skip
    r = await c.post("/v1/containers", params={"run": "true"}, json=body)
    assert r.status_code == 202, r.text
    obj = await _bed(c).store.get(Container, "web", "demo")
    secret_name = (await _bed(c).store.list(PullSecret, "demo")).items[0].name
    assert obj.spec.image_pull_policy == "Always"
    assert [ref.name for ref in obj.spec.image_pull_secrets] == [secret_name]
    assert (r.json()["registry_id"], r.json()["image_pull_policy"]) == (shown["uuid"], "always")
    got = (await c.get("/v1/containers/web")).json()
    assert (got["registry_id"], got["image_pull_policy"]) == (shown["uuid"], "always")
    by_uuid = {**body, "name": "web2", "registry": shown["uuid"], "image_pull_policy": "never"}
    r = await c.post("/v1/containers", json=by_uuid)
    assert r.status_code == 202 and r.json()["image_pull_policy"] == "never"


async def test_default_pull_policy_is_kubernetes_default_for_the_tag(
    c: httpx.AsyncClient,
) -> None:
    for name, image, policy in [("ca", "zun-test/httpd:v1", "ifnotpresent"),
                                ("cb", "zun-test/httpd", "always")]:  # fmt: skip
        r = await c.post("/v1/containers", json={"name": name, "image": image})
        assert r.json()["image_pull_policy"] == policy
        assert (await _bed(c).store.get(Container, name, "demo")).spec.image_pull_policy is None


async def test_bad_registry_or_pull_policy_is_400_naming_the_field(c: httpx.AsyncClient) -> None:
    await _create(c)
    image = "127.0.0.1:5443/team/app:v1"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"image_pull_policy": "sometimes"}, "field/attribute image_pull_policy"),
        ({"image_pull_policy": 3}, "field/attribute image_pull_policy"),
        ({"registry": "nope"}, "field/attribute registry: Registry nope could not be found"),
        ({"registry": ["private"]}, "field/attribute registry"),
        ({"registry": "private", "image": "quay.io/x/y:1"}, "is pulled from quay.io"),
    ]
    for extra, words in cases:
        r = await c.post("/v1/containers", json={"name": "web", "image": image, **extra})
        assert words in _error(r, 400), extra
    assert (await _bed(c).store.list(Container, "demo")).items == []


async def test_the_list_pages_with_limit_and_marker(c: httpx.AsyncClient) -> None:
    made = [(await _create(c, name=f"reg{i}"))["uuid"] for i in range(3)]
    first = (await c.get("/v1/registries", params={"limit": 2})).json()
    assert [r["uuid"] for r in first["registries"]] == made[:2]
    rest = (await c.get(first["next"].removeprefix("http://localhost"))).json()
    assert [r["uuid"] for r in rest["registries"]] == made[2:] and rest["next"] is None
    assert _error(await c.get("/v1/registries", params={"marker": "nope"}), 400)


async def test_a_registry_in_use_is_not_deleted_and_the_409_names_its_users(
    c: httpx.AsyncClient,
) -> None:
    bed = _bed(c)
    shown = await _create(c, name="My_Registry")
    record = (await bed.store.list(PullSecret, "demo")).items[0].name
    image = "127.0.0.1:5443/team/app:v1"
    body = {"name": "Web_1", "image": image, "registry": "My_Registry"}
    assert (await c.post("/v1/containers", json=body)).status_code == 202
    template = {"containers": [{"name": "w", "image": image,
                                "imagePullSecrets": [{"name": record}]}]}  # fmt: skip
    app = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Application",
           "metadata": {"name": "shop", "project": "demo"},
           "spec": {"cluster": "c1", "template": template}}  # fmt: skip
    await bed.store.create(parse(app))
    refused = _error(await c.delete(f"/v1/registries/{shown['uuid']}"), 409)
    assert refused == (
        "Registry My_Registry is in use (used by Application demo/shop; Container demo/Web_1): "
        "delete them first."
    )
    assert (await bed.store.get(PullSecret, record, "demo")).metadata.deletion_timestamp is None
    await bed.store.delete(Application, "shop", "demo")
    assert "Container demo/Web_1" in _error(await c.delete("/v1/registries/My_Registry"), 409)
    (web,) = (await bed.store.list(Container, "demo")).items
    await bed.store.delete(Container, web.name, "demo")
    assert (await c.delete("/v1/registries/My_Registry")).status_code == 204
    assert (await c.get("/v1/registries")).json()["registries"] == []


async def test_a_registry_whose_record_is_deleting_is_neither_shown_nor_found(
    c: httpx.AsyncClient,
) -> None:
    bed = _bed(c)
    await _create(c)
    secret = await bed.store.get(PullSecret, "private", "demo")
    secret.metadata.finalizers = ["zun.openstack.org/in-use"]  # as the controller holds it
    await bed.store.update(secret)
    await bed.store.delete(PullSecret, "private", "demo")
    assert (await c.get("/v1/registries")).json()["registries"] == []
    assert "could not be found" in _error(await c.get("/v1/registries/private"), 404)
    body = {"name": "web", "image": "127.0.0.1:5443/team/app:v1", "registry": "private"}
    assert "could not be found" in _error(await c.post("/v1/containers", json=body), 400)
