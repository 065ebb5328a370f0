"""Zun v1 images on the in-memory store and fake engines (the API server's own `ImageIO`
adapter over `FakeRuntime`s and a `FakeRegistry` with basic auth): the list per Host and tag,
pulls with the project's registry credentials, one pull for concurrent requests, the
registry's words on failure, deletes that untag and are refused while containers use the
image, admin only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.api.io import Credentials, LocalImage
from zun_controller.api.zunv1 import ZunV1Settings
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.pulls import Pulls
from zun_controller.cli.apiserver import PoolContainerIO
from zun_controller.drivers.runtime.base import ContainerConfig
from zun_controller.drivers.runtime.fake import FakeRuntime, FakeRuntimeFactory
from zun_controller.drivers.runtime.fake_images import FakeRegistry
from zun_controller.models.base import ObjectMeta
from zun_controller.models.container import Container, ContainerSpec
from zun_controller.models.host import Host, HostSpec
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

V = {"OpenStack-API-Version": "container 1.40"}
LOCAL = "zun-test/httpd:v1"
REGISTRY = "127.0.0.1:5443"
PASSWORD = "s3cret-Pw"
PRIVATE = f"{REGISTRY}/team-x/app"


class Bed:
    def __init__(self) -> None:
        self.store = RecordStore(MemoryKV())
        self.registry = FakeRegistry(REGISTRY, users={"alice": PASSWORD})
        self.factory = FakeRuntimeFactory(images=(LOCAL,), registries=(self.registry,))
        self.io = PoolContainerIO(self.store, self.factory)
        settings = ZunV1Settings(noauth=True, project="demo")
        self.app = create_app(self.store, self.io, release=False, zun_v1=settings, images=self.io)
        self.admin = ""

    async def setup(self) -> None:
        self.admin = await Tokens(self.store.kv).create("admin", Role.ADMIN, [])
        for name in ("hosta", "hostb"):
            spec = HostSpec(endpoint=f"unix:///run/{name}.sock")
            await self.store.create(Host(metadata=ObjectMeta(name=name), spec=spec))

    def client(self, admin: bool = True) -> httpx.AsyncClient:
        token = {"X-Auth-Token": self.admin} if admin else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://localhost",
            headers={**V, **token},
        )


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    made = Bed()
    await made.setup()
    yield made
    await made.io.close()


def _error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    (err,) = r.json()["errors"]
    title: str = err["title"]
    return title


async def _registry(bed: Bed) -> None:
    body = {"registry": {"name": "team", "domain": REGISTRY, "username": "alice",
                         "password": PASSWORD}}  # fmt: skip
    async with bed.client(admin=False) as member:
        assert (await member.post("/v1/registries", json=body)).status_code == 202


async def test_the_list_has_a_row_per_host_and_tag(bed: Bed) -> None:
    async with bed.client() as c:
        listed = (await c.get("/v1/images/")).json()
    rows = [(r["host"], r["repo"], r["tag"]) for r in listed["images"]]
    assert rows == [("hosta", "zun-test/httpd", "v1"), ("hostb", "zun-test/httpd", "v1")]
    first = listed["images"][0]
    assert first["image_id"].startswith("sha256:") and set(first) >= {"uuid", "size", "links"}
    async with bed.client() as c:
        assert (await c.get(f"/v1/images/{first['uuid']}")).json() == first
        assert _error(await c.get("/v1/images/nope"), 404)
        paged = (await c.get("/v1/images", params={"limit": 1})).json()
        assert paged["images"] == [first] and paged["next"].endswith(f"marker={first['uuid']}")


async def test_only_admins_list_and_pull(bed: Bed) -> None:
    async with bed.client(admin=False) as c:
        assert "image:get_all" in _error(await c.get("/v1/images"), 403)
        body = {"repo": f"{PRIVATE}:v1", "host": "hosta"}
        assert "image:pull" in _error(await c.post("/v1/images", json=body), 403)


async def test_a_private_pull_uses_the_projects_registry_and_lands_on_that_host(
    bed: Bed,
) -> None:
    bed.registry.publish(f"{PRIVATE}:v1")
    body = {"repo": PRIVATE, "tag": "v1", "host": "hosta"}
    async with bed.client() as c:
        refused = await c.post("/v1/images", json=body)
        assert "unauthorized: authentication required" in _error(refused, 400)
        await _registry(bed)
        r = await c.post("/v1/images/", json=body)
        assert r.status_code == 202, r.text
        pulled = r.json()
        assert (pulled["repo"], pulled["tag"], pulled["host"]) == (PRIVATE, "v1", "hosta")
        assert r.headers["Location"].endswith(f"/v1/images/{pulled['uuid']}")
        listed = (await c.get("/v1/images")).json()["images"]
    assert PASSWORD not in r.text + refused.text
    rows = {(i["host"], i["repo"]) for i in listed}
    assert ("hosta", PRIVATE) in rows and ("hostb", PRIVATE) not in rows
    assert [i["image_id"] for i in listed if i["repo"] == PRIVATE] == [pulled["image_id"]]


class Counted:
    """An `ImageIO` that counts the pulls that reach it and says when one has."""

    def __init__(self, inner: PoolContainerIO) -> None:
        self.inner, self.calls, self.entered = inner, 0, asyncio.Event()

    async def images(self, host: Host) -> Sequence[LocalImage]:
        return await self.inner.images(host)

    async def remove(self, host: Host, image: str) -> None:
        await self.inner.remove(host, image)

    async def pull(
        self, host: Host, image: str, credentials: Credentials | None, *, within: float
    ) -> LocalImage:
        self.calls += 1
        self.entered.set()
        return await self.inner.pull(host, image, credentials, within=within)


async def test_concurrent_pulls_of_one_image_pull_once_and_the_flights_are_bounded(
    bed: Bed,
) -> None:
    bed.registry.publish(f"{PRIVATE}:v2")
    host = await bed.store.get(Host, "hosta")
    creds = Credentials(REGISTRY, "alice", PASSWORD)
    io, pulls = Counted(bed.io), Pulls(queued=1)
    gate = bed.registry.hold()
    waiting = [asyncio.create_task(pulls.pull(io, host, f"{PRIVATE}:v2", creds)) for _ in "abc"]
    await io.entered.wait()  # the three joined before the one pull task ran
    with pytest.raises(ZunV1Error) as full:
        await pulls.pull(io, host, LOCAL, None)
    assert full.value.status == 503
    gate.set()
    got = await asyncio.gather(*waiting)
    assert io.calls == 1 and bed.registry.pulls == [f"{PRIVATE}:v2"]
    assert len({image.id for image in got}) == 1 and pulls.in_flight() == []


async def test_bad_pull_bodies_name_the_field(bed: Bed) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"host": "hosta"}, 400, "field/attribute repo: required"),
        ({"repo": "Not An Image", "host": "hosta"}, 400, "field/attribute repo"),
        ({"repo": LOCAL}, 400, "field/attribute host"),
        ({"repo": LOCAL, "host": "nowhere"}, 404, "ComputeNode nowhere could not be found"),
        ({"repo": "quay.io/none/such:v1", "host": "hosta"}, 400, "no such host"),
    ]
    async with bed.client() as c:
        for body, status, words in cases:
            assert words in _error(await c.post("/v1/images", json=body), status), body


def _engine(bed: Bed, host: str) -> FakeRuntime:
    return bed.factory.runtimes[f"unix:///run/{host}.sock"]


async def _row(c: httpx.AsyncClient, host: str, repo: str, tag: str) -> dict[str, Any] | None:
    rows = (await c.get("/v1/images")).json()["images"]
    found = [r for r in rows if (r["host"], r["repo"], r["tag"]) == (host, repo, tag)]
    return found[0] if found else None


async def test_only_admins_delete(bed: Bed) -> None:
    async with bed.client() as admin:
        row = await _row(admin, "hosta", "zun-test/httpd", "v1")
    assert row is not None
    async with bed.client(admin=False) as c:
        assert "image:delete" in _error(await c.delete(f"/v1/images/{row['uuid']}"), 403)
    assert await _engine(bed, "hosta").inspect_image(LOCAL) is not None


async def test_a_delete_untags_the_rows_tag_on_its_host_only(bed: Bed) -> None:
    async with bed.client() as c:
        await c.get("/v1/images")  # the engines are made on first use
        _engine(bed, "hosta").tag_image(LOCAL, "zun-test/httpd:extra")
        extra = await _row(c, "hosta", "zun-test/httpd", "extra")
        assert extra is not None
        r = await c.delete(f"/v1/images/{extra['uuid']}")
        assert r.status_code == 204 and r.content == b""
        assert await _row(c, "hosta", "zun-test/httpd", "extra") is None
        kept = await _row(c, "hosta", "zun-test/httpd", "v1")
        assert kept is not None and kept["image_id"] == extra["image_id"]  # only untagged
        r = await c.delete(f"/v1/images/{kept['uuid']}")
        assert r.status_code == 204
        assert "could not be found" in _error(await c.delete(f"/v1/images/{kept['uuid']}"), 404)
        assert "could not be found" in _error(await c.get(f"/v1/images/{kept['uuid']}"), 404)
        assert await _row(c, "hostb", "zun-test/httpd", "v1") is not None  # the other Host's
    assert await _engine(bed, "hosta").inspect_image(LOCAL) is None


async def test_a_delete_is_refused_while_containers_use_the_image(bed: Bed) -> None:
    async with bed.client() as c:
        row = await _row(c, "hosta", "zun-test/httpd", "v1")
        assert row is not None
        engine = _engine(bed, "hosta")
        ours = await engine.create(ContainerConfig(name="zun_demo_web", image=LOCAL, labels={}))
        await engine.start(ours.id)
        other = await engine.create(ContainerConfig(name="by-hand", image=LOCAL, labels={}))
        record = await bed.store.create(
            Container(
                metadata=ObjectMeta(name="web", project="demo"), spec=ContainerSpec(image=LOCAL)
            )
        )
        record.status.host, record.status.container_id = "hosta", ours.id
        await bed.store.update_status(record)
        refused = _error(await c.delete(f"/v1/images/{row['uuid']}"), 409)
        assert f"web (project demo, uuid {record.metadata.uid})" in refused
        assert f"{other.id[:12]} (an engine container of no Zun record)" in refused
        assert "zun-test/httpd:v1 on host hosta is in use" in refused
        assert await _row(c, "hosta", "zun-test/httpd", "v1") == row  # nothing removed
        await engine.remove(ours.id)
        await engine.remove(other.id)
        assert (await c.delete(f"/v1/images/{row['uuid']}")).status_code == 204
