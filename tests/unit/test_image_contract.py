"""The Runtime contract for images: every test runs on `FakeRuntime` with `FakeRegistry`s and
on the machine's Docker engine with real registries on loopback (tests/e2e/testbed/registry.py:
one plain, one TLS with basic auth), so the fake pulls, fails and reports digests as Docker
and distribution do."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from zun_controller.drivers.runtime.base import ContainerConfig, RegistryAuth, Runtime
from zun_controller.drivers.runtime.docker import DockerRuntime
from zun_controller.drivers.runtime.fake import FakeRuntime
from zun_controller.drivers.runtime.fake_images import FakeRegistry
from zun_controller.errors import PermanentError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from testbed.docker import HTTPD_V1, HTTPD_V2, TESTBED_LABELS, ensure_dockerd, ensure_test_images
from testbed.registry import Registry, free_port, start_registry, stop_registry

RUN = uuid.uuid4().hex[:8]
LABELS = {**TESTBED_LABELS, "zun-testbed.run": RUN}
USER, PASSWORD = "alice", f"pw-{RUN}"
WITHIN = 60.0


@dataclass
class Side:
    """One side of the contract: an engine, and how to publish into its two registries."""

    runtime: Runtime
    plain: str  # host:port of the registry without auth
    private: str  # host:port of the one with auth
    closed: str  # host:port where nothing listens
    real: tuple[Registry, Registry] | None = None
    api: Any = None
    fakes: tuple[FakeRegistry, FakeRegistry] | None = None

    def publish(self, private: bool, repository: str, tag: str, source: str = HTTPD_V1) -> str:
        """Push `source` (a zun-test image) as repository:tag; its manifest digest."""
        if self.real is not None:
            return self.real[1 if private else 0].push(self.api, source, repository, tag)
        assert self.fakes is not None
        host = self.private if private else self.plain
        return self.fakes[1 if private else 0].publish(
            f"{host}/{repository}:{tag}", output=source.encode()
        )


@pytest.fixture(scope="module")
def registries() -> Iterator[tuple[Registry, Registry, Any]]:
    url = ensure_dockerd()
    ensure_test_images(url)
    api = docker.APIClient(base_url=url, version="auto")
    plain = start_registry(f"rc-{RUN}")
    private = start_registry(f"rcs-{RUN}", tls=True, user=USER, password=PASSWORD)
    try:
        yield plain, private, api
    finally:
        stop_registry(plain, api)
        stop_registry(private, api)
        api.close()


@pytest.fixture(params=["fake", pytest.param("docker", marks=pytest.mark.e2e)])
async def side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    closed = f"127.0.0.1:{free_port()}"
    if request.param == "fake":
        fakes = (
            FakeRegistry("127.0.0.1:5000"),
            FakeRegistry("127.0.0.1:5001", users={USER: PASSWORD}),
        )
        fake = FakeRuntime("fake", images=(HTTPD_V1,), registries=fakes)
        yield Side(fake, fakes[0].host, fakes[1].host, closed, fakes=fakes)
        return
    plain, private, api = request.getfixturevalue("registries")
    runtime = DockerRuntime("main", "unix:///var/run/docker.sock", timeout=30.0)
    try:
        yield Side(runtime, plain.host, private.host, closed, real=(plain, private), api=api)
    finally:
        for c in await runtime.list_containers(LABELS):
            await runtime.remove(c.id)
        await runtime.close()


def auth(side: Side, password: str = PASSWORD) -> RegistryAuth:
    return RegistryAuth(side.private, USER, password)


def repo() -> str:
    return f"zun-test-{uuid.uuid4().hex[:8]}/httpd"


async def test_a_present_image_inspects_and_an_absent_one_is_none(side: Side) -> None:
    info = await side.runtime.inspect_image(HTTPD_V1)
    assert info is not None and info.id.startswith("sha256:")
    assert await side.runtime.inspect_image(f"{side.plain}/{repo()}:v1") is None


async def test_a_public_pull_gives_the_pushed_digest_and_runs(side: Side) -> None:
    repository = repo()
    digest = side.publish(False, repository, "v1")
    image = f"{side.plain}/{repository}:v1"
    info = await side.runtime.pull_image(image, None, within=WITHIN)
    assert f"{side.plain}/{repository}@{digest}" in info.repo_digests
    assert await side.runtime.image_exists(image)
    state = await side.runtime.create(ContainerConfig(name=f"ic-{RUN}", image=image, labels=LABELS))
    assert state.image_id == info.id


async def test_the_list_shows_a_pulled_image_by_its_tag(side: Side) -> None:
    repository = repo()
    side.publish(False, repository, "v1")
    image = f"{side.plain}/{repository}:v1"
    assert all(image not in i.repo_tags for i in await side.runtime.list_images())
    info = await side.runtime.pull_image(image, None, within=WITHIN)
    (listed,) = [i for i in await side.runtime.list_images() if image in i.repo_tags]
    assert (listed.id, listed.size) == (info.id, info.size) and listed.size > 0
    assert any(HTTPD_V1 in i.repo_tags for i in await side.runtime.list_images())


async def test_a_private_pull_needs_the_right_password(side: Side) -> None:
    repository = repo()
    digest = side.publish(True, repository, "v1")
    image = f"{side.private}/{repository}:v1"
    with pytest.raises(PermanentError) as caught:
        await side.runtime.pull_image(image, auth(side, "wrong"), within=WITHIN)
    assert caught.value.reason == "ErrImagePull"
    assert "unauthorized" in caught.value.message
    assert "wrong" not in caught.value.message.replace("unauthorized", "")
    info = await side.runtime.pull_image(image, auth(side), within=WITHIN)
    assert f"{side.private}/{repository}@{digest}" in info.repo_digests


async def test_a_missing_tag_is_manifest_unknown(side: Side) -> None:
    repository = repo()
    side.publish(False, repository, "v1")
    with pytest.raises(PermanentError) as caught:
        await side.runtime.pull_image(f"{side.plain}/{repository}:v9", None, within=WITHIN)
    assert caught.value.reason == "ErrImagePull"
    assert "manifest unknown" in caught.value.message


async def test_a_closed_registry_is_connection_refused(side: Side) -> None:
    if side.fakes is not None:
        side.fakes[0].reachable = False
        image = f"{side.plain}/{repo()}:v1"
    else:
        image = f"{side.closed}/{repo()}:v1"
    with pytest.raises(PermanentError) as caught:
        await side.runtime.pull_image(image, None, within=WITHIN)
    assert "connection refused" in caught.value.message


async def test_a_moved_tag_pulls_a_new_digest_and_a_digest_pulls_the_old(side: Side) -> None:
    repository = repo()
    first = side.publish(False, repository, "moving", source=HTTPD_V1)
    second = side.publish(False, repository, "moving", source=HTTPD_V2)
    assert first != second
    tagged = await side.runtime.pull_image(f"{side.plain}/{repository}:moving", None, within=WITHIN)
    assert f"{side.plain}/{repository}@{second}" in tagged.repo_digests
    pinned = f"{side.plain}/{repository}@{first}"
    old = await side.runtime.pull_image(pinned, None, within=WITHIN)
    assert pinned in old.repo_digests and old.id != tagged.id
