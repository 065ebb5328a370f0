"""The Runtime contract for images: every test runs on `FakeRuntime` with `FakeRegistry`s and
on the machine's Docker engine with real registries on loopback (tests/e2e/testbed/registry.py:
one plain, one TLS with basic auth), so the fake pulls, fails, reports digests and removes tags
as Docker and distribution do."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from zun_controller.drivers.runtime.base import (
    ContainerConfig,
    ImageUser,
    RegistryAuth,
    Runtime,
    image_users,
)
from zun_controller.drivers.runtime.docker import DockerRuntime
from zun_controller.drivers.runtime.fake import FakeRuntime
from zun_controller.drivers.runtime.fake_images import FakeRegistry
from zun_controller.errors import InUseError, NotFoundError, PermanentError

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

    def tag(self, image: str, target: str) -> None:
        """`docker tag image target` on the engine."""
        if self.real is not None:
            repository, _, tag = target.rpartition(":")
            self.api.tag(image, repository, tag)
            return
        assert isinstance(self.runtime, FakeRuntime)
        self.runtime.tag_image(image, target)


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


async def _pulled(side: Side) -> tuple[str, str]:
    """A new image pulled from the plain registry: (repository, its reference by tag v1)."""
    repository = f"{side.plain}/{repo()}"
    side.publish(False, repository.split("/", 1)[1], "v1")
    await side.runtime.pull_image(f"{repository}:v1", None, within=WITHIN)
    return repository, f"{repository}:v1"


async def _tags(side: Side) -> set[str]:
    return {t for i in await side.runtime.list_images() for t in i.repo_tags}


async def test_removing_a_tag_untags_only_it_and_the_last_removes_the_image(side: Side) -> None:
    repository, image = await _pulled(side)
    before = await side.runtime.inspect_image(image)
    assert before is not None
    side.tag(image, f"{repository}:extra")
    await side.runtime.remove_image(f"{repository}:extra")
    assert await side.runtime.inspect_image(f"{repository}:extra") is None
    kept = await side.runtime.inspect_image(image)
    assert kept is not None and kept.id == before.id
    assert image in await _tags(side) and f"{repository}:extra" not in await _tags(side)
    await side.runtime.remove_image(image)
    assert await side.runtime.inspect_image(image) is None
    assert image not in await _tags(side)
    with pytest.raises(NotFoundError):
        await side.runtime.remove_image(image)
    assert await side.runtime.inspect_image(HTTPD_V1) is not None  # nothing else went


async def test_a_tag_removed_takes_the_digest_references_of_its_repository(side: Side) -> None:
    repository = repo()
    digest = side.publish(False, repository, "v1")
    image, pinned = f"{side.plain}/{repository}:v1", f"{side.plain}/{repository}@{digest}"
    await side.runtime.pull_image(image, None, within=WITHIN)
    await side.runtime.pull_image(pinned, None, within=WITHIN)
    await side.runtime.remove_image(image)
    assert await side.runtime.inspect_image(image) is None
    assert await side.runtime.inspect_image(pinned) is None
    with pytest.raises(PermanentError):
        await side.runtime.remove_image(pinned)  # a tag is named, never a digest


async def test_an_image_a_container_was_made_by_is_not_removed_running_or_not(side: Side) -> None:
    repository, image = await _pulled(side)
    name = f"ir-{RUN}-{uuid.uuid4().hex[:6]}"
    state = await side.runtime.create(ContainerConfig(name=name, image=image, labels=LABELS))
    for started in (False, True):
        if started:
            await side.runtime.start(state.id)
        with pytest.raises(InUseError) as refused:
            await side.runtime.remove_image(image)
        assert refused.value.users == (state.id,), started
        assert name in str(refused.value) and "in use" in str(refused.value)
        assert image in await _tags(side)  # never forced
    side.tag(image, f"{repository}:extra")
    await side.runtime.remove_image(f"{repository}:extra")  # not the one it was made by
    await side.runtime.remove(state.id)
    await side.runtime.remove_image(image)
    assert await side.runtime.inspect_image(image) is None


def test_the_last_tag_is_used_by_every_container_made_from_the_image() -> None:
    made = [
        ImageUser("c1", "web", "running", "sha256:a", "r/x:v1"),
        ImageUser("c2", "db", "exited", "sha256:a", "r/y"),
        ImageUser("c3", "other", "running", "sha256:b", "r/x:v1"),
    ]
    assert image_users("r/z:v1", "sha256:a", False, made) is None
    by_tag = image_users("r/y:latest", "sha256:a", False, made)
    assert by_tag is not None and by_tag.users == ("c2",)
    last = image_users("r/z:v1", "sha256:a", True, made)
    assert last is not None and last.users == ("c2", "c1")  # by container name
    assert "db (c2, exited), web (c1, running)" in str(last)
