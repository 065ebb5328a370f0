"""GitOps end to end: a git repository of manifests, a GitRepository record, a controller
process, and containers that really run on Docker."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from testbed.docker import (
    HTTPD_V1,
    HTTPD_V2,
    MAIN_SOCKET_URL,
    client,
    ensure_dockerd,
    ensure_test_images,
)
from zun_bed import ZunBed, clean_engine

from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


class Repo:
    def __init__(self, path: Path, project: str) -> None:
        self.path, self.project = path, project
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=GIT_ENV, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, list[dict[str, Any]] | None]) -> str:
        for name, docs in files.items():
            if docs is None:
                (self.path / name).unlink()
            else:
                (self.path / name).write_text(yaml.safe_dump_all(docs))
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "change")
        return self.git("rev-parse", "HEAD")


def ctr(name: str, image: str = HTTPD_V1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
            "metadata": {"name": name}, "spec": {"image": image, **spec}}  # fmt: skip


@pytest.fixture
async def world(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient
) -> AsyncIterator[tuple[ZunBed, Repo]]:
    project = f"g{secrets.token_hex(3)}"
    zun = ZunBed(own_etcd, tmp_path, (project,))
    await zun.host("local", MAIN_SOCKET_URL)
    zun.start()
    yield zun, Repo(tmp_path / "repo", project)
    await zun.close()
    clean_engine(engine, (project,))


def running(engine: docker.DockerClient, project: str) -> dict[str, str]:
    """Record name -> image of the running containers Zun made for the project."""
    found = engine.containers.list(
        ignore_removed=True, filters={"label": f"zun.openstack.org/project={project}"}
    )
    return {c.labels["zun.openstack.org/name"]: c.attrs["Config"]["Image"] for c in found}


@pytest.mark.timeout(300)
async def test_git_commits_converge_prune_and_hand_edits_revert(
    world: tuple[ZunBed, Repo], engine: docker.DockerClient
) -> None:
    zun, repo = world
    p = repo.project
    repo.commit({"web.yaml": [ctr("web"), ctr("api")], "db.yaml": [ctr("db")]})
    spec = {"url": f"file://{repo.path}", "intervalSeconds": 2}
    await zun.apply("GitRepository", "site", spec, project=p)
    want = {"web": HTTPD_V1, "api": HTTPD_V1, "db": HTTPD_V1}
    await zun.until(lambda: running(engine, p) == want, 120, "first commit converged")

    repo.commit({"web.yaml": [ctr("web", HTTPD_V2), ctr("api")], "db.yaml": None})
    want = {"web": HTTPD_V2, "api": HTTPD_V1}
    await zun.until(lambda: running(engine, p) == want, 120, "update applied, db.yaml pruned")

    obj = await zun.container("api", p)
    obj.spec.image = HTTPD_V2
    await zun.store.update(obj)

    async def reverted() -> bool:
        return (await zun.container("api", p)).spec.image == HTTPD_V1

    await zun.until(reverted, 30, "hand edit reverted")
    await zun.until(lambda: running(engine, p) == want, 120, "engine back on the git version")


@pytest.mark.timeout(300)
async def test_malformed_manifest_names_file_and_field_and_applies_nothing(
    world: tuple[ZunBed, Repo], engine: docker.DockerClient
) -> None:
    zun, repo = world
    p = repo.project
    good = repo.commit({"web.yaml": [ctr("web")]})
    await zun.apply(
        "GitRepository", "site", {"url": f"file://{repo.path}", "intervalSeconds": 2}, project=p
    )
    await zun.until(lambda: running(engine, p) == {"web": HTTPD_V1}, 120, "first commit")
    repo.commit(
        {
            "web.yaml": [ctr("web", HTTPD_V2), ctr("extra")],
            "bad.yaml": [ctr("bad", restartPolicy="Sometimes")],
        }
    )

    async def failed() -> str | None:
        repo_rec = await zun.store.get(GitRepository, "site", p)
        cond = repo_rec.status.condition("Ready")
        return cond.message if cond and cond.reason == "InvalidManifest" else None

    message = await zun.until(failed, 60, "InvalidManifest condition")
    assert "bad.yaml: spec.restartPolicy" in message
    names = sorted(c.name for c in (await zun.store.list(Container, p)).items)
    assert names == ["web"]
    assert (await zun.container("web", p)).spec.image == HTTPD_V1
    assert (await zun.store.get(GitRepository, "site", p)).status.last_applied_commit == good
    assert running(engine, p) == {"web": HTTPD_V1}


def app_doc(replicas: int) -> dict[str, Any]:
    template = {"containers": [{"name": "web", "image": HTTPD_V1}]}
    spec = {"cluster": "local-docker", "replicas": replicas, "template": template}
    return {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Application",
            "metadata": {"name": "shop"}, "spec": spec}  # fmt: skip


def replicas_running(engine: docker.DockerClient, project: str) -> int:
    """Running engine containers of the app's replicas (`shop-<revision>-<n>`, not `shop-lb`)."""
    return sum(1 for n in running(engine, project) if n.startswith("shop-") and n != "shop-lb")


@pytest.mark.timeout(400)
async def test_changing_replicas_in_git_scales_the_application(
    world: tuple[ZunBed, Repo], engine: docker.DockerClient
) -> None:
    zun, repo = world
    p = repo.project
    await zun.apply("Cluster", "local-docker", {"type": "docker"})
    repo.commit({"app.yaml": [app_doc(1)]})
    spec = {"url": f"file://{repo.path}", "intervalSeconds": 2}
    await zun.apply("GitRepository", "site", spec, project=p)
    await zun.until(lambda: replicas_running(engine, p) == 1, 180, "1 replica from git")
    repo.commit({"app.yaml": [app_doc(3)]})
    await zun.until(lambda: replicas_running(engine, p) == 3, 180, "scaled to 3 by a commit")
