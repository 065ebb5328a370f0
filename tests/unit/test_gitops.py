"""GitRepository reconciler on the in-memory store with a real git repository in a temp dir."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from zun_controller.engine.manager import Manager
from zun_controller.errors import NotFoundError
from zun_controller.gitops.manifests import APPLY_SET
from zun_controller.gitops.policy import GitPolicy
from zun_controller.gitops.setup import register_gitops
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.registry import parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def container_doc(name: str, image: str = "zun-test/httpd:v1") -> dict[str, Any]:
    return {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
            "metadata": {"name": name}, "spec": {"image": image}}  # fmt: skip


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        git(path, "init", "-q", "-b", "main")

    def commit(self, files: dict[str, Any], message: str = "change") -> str:
        for name, docs in files.items():
            target = self.path / name
            if docs is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(docs if isinstance(docs, str) else yaml.safe_dump_all(docs))
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD").strip()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[RecordStore, Repo]]:
    store = RecordStore(MemoryKV())
    manager = Manager(metrics=Metrics(), health_port=None)
    policy = GitPolicy.allowing("https,ssh,file")  # the admin setting local repositories need
    register_gitops(manager, store, manager.metrics, tmp_path / "cache", git_policy=policy)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    yield store, Repo(tmp_path / "repo")
    stop.set()
    await asyncio.wait_for(task, 10)


async def add_repo(store: RecordStore, repo: Repo, interval: float = 1.0) -> None:
    spec = {"url": f"file://{repo.path}", "intervalSeconds": interval}
    doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "GitRepository",
           "metadata": {"name": "site", "project": "demo"}, "spec": spec}  # fmt: skip
    await store.create(parse(doc))


async def until(check: Callable[[], Any], within: float = 15.0) -> Any:
    async with asyncio.timeout(within):
        while not (result := await check()):  # noqa: ASYNC110 - git has no event to await
            await asyncio.sleep(0.05)
    return result


async def repo_status(store: RecordStore) -> GitRepository:
    return await store.get(GitRepository, "site", "demo")


async def test_commit_applies_change_updates_and_deleted_file_prunes(
    world: tuple[RecordStore, Repo],
) -> None:
    store, repo = world
    first = repo.commit({"a.yaml": [container_doc("a"), container_doc("b")]})
    await add_repo(store, repo)

    async def applied(commit: str) -> bool:
        return (await repo_status(store)).status.last_applied_commit == commit

    await until(lambda: applied(first))
    a = await store.get(Container, "a", "demo")
    assert a.metadata.labels[APPLY_SET] == "site"
    assert a.metadata.annotations["zun.openstack.org/source"] == "gitops"
    second = repo.commit({"a.yaml": [container_doc("a", "zun-test/httpd:v2")]})
    await until(lambda: applied(second))
    assert (await store.get(Container, "a", "demo")).spec.image == "zun-test/httpd:v2"
    with pytest.raises(NotFoundError):
        await store.get(Container, "b", "demo")
    assert (await repo_status(store)).status.pruned == ["containers/demo/b"]


async def test_hand_edit_is_reverted_at_the_next_interval(world: tuple[RecordStore, Repo]) -> None:
    store, repo = world
    repo.commit({"a.yaml": [container_doc("a")]})
    await add_repo(store, repo, interval=1.0)
    obj = await until(lambda: _get(store, "a"))
    obj.spec.image = "by-hand:1"
    await store.update(obj)

    async def reverted() -> bool:
        return (await store.get(Container, "a", "demo")).spec.image == "zun-test/httpd:v1"

    await until(reverted)
    assert (await repo_status(store)).status.drift_corrected >= 1


async def _get(store: RecordStore, name: str) -> Container | None:
    try:
        return await store.get(Container, name, "demo")
    except NotFoundError:
        return None


async def test_bad_manifest_applies_nothing_and_names_file_and_field(
    world: tuple[RecordStore, Repo],
) -> None:
    store, repo = world
    good = repo.commit({"a.yaml": [container_doc("a")]})
    await add_repo(store, repo)
    await until(lambda: _get(store, "a"))
    bad = container_doc("broken")
    bad["spec"]["ports"] = [{"containerPort": 70000}]
    repo.commit({"b.yaml": [container_doc("new-one")], "c.yaml": [bad]})

    async def failed() -> str | None:
        cond = (await repo_status(store)).status.condition("Ready")
        return cond.message if cond and cond.reason == "InvalidManifest" else None

    message = await until(failed)
    assert "c.yaml: spec.ports[0].containerPort" in message
    assert await _get(store, "new-one") is None
    status = (await repo_status(store)).status
    assert status.last_applied_commit == good
