"""GitRepository credentials end to end: `zun-controller up` (http allowed: the loopback git
server has no TLS), `zunctl`, and a git smart-http server with basic auth on 127.0.0.1. The
repository is read with its project's GitSecret and with nothing else; the password shows in no
status, Event, log line or file of the controller's git cache."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from test_gitops_readme_e2e import ok
from test_ownership_gc_e2e import RUNNING_WITHIN_S, User, until
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd
from testbed.docker import ensure_test_images as images
from testbed.git_http import GitHttp, serve
from zun_bed import clean_engine
from zunctl_bed import AllInOne

from zun_controller.config import default_data_dir
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip
USER = "deploy"


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def projects(engine: docker.DockerClient) -> Iterator[tuple[str, str]]:
    names = (f"gc{secrets.token_hex(3)}", f"gx{secrets.token_hex(3)}")
    yield names
    clean_engine(engine, names)


def bare_repo(root: Path) -> None:
    work = root / "work"
    work.mkdir(parents=True)
    doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
           "metadata": {"name": "web"}, "spec": {"image": HTTPD_V1}}  # fmt: skip
    (work / "web.yaml").write_text(yaml.safe_dump(doc))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"],
                 ["clone", "-q", "--bare", ".", str(root / "srv" / "site.git")]):  # fmt: skip
        subprocess.run(["git", *args], cwd=work, env=GIT_ENV, check=True, capture_output=True)


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[str, GitHttp, str]]:
    """The repository's URL, the server, and the one password it takes."""
    password = f"pw-{secrets.token_hex(8)}"
    bare_repo(tmp_path / "git")
    with serve(tmp_path / "git" / "srv", USER, password) as (base, app):
        yield f"{base}/site.git", app, password


def record(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind,
            "metadata": {"name": name}, "spec": spec}  # fmt: skip


def apply(user: User, tmp_path: Path, *docs: dict[str, Any]) -> None:
    path = tmp_path / f"{user.project}-{secrets.token_hex(3)}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    ok(user.ctl("apply", "-f", str(path)))


def _bytes(path: Path) -> bytes:
    """A cache file's content; nothing for a directory or a file git removed meanwhile (the
    controller keeps fetching while the test reads its cache)."""
    try:
        return path.read_bytes() if path.is_file() else b""
    except FileNotFoundError:
        return b""


def reason(user: User, name: str) -> str | None:
    got = json.loads(ok(user.ctl("get", "gitrepository", name, "-o", "json")))
    conds = (got.get("status") or {}).get("conditions", [])
    ready = next((c for c in conds if c["type"] == "Ready"), None)
    return ready["reason"] if ready else None


@pytest.mark.timeout(300)
def test_a_repository_behind_basic_auth_is_read_with_its_own_secret_only(
    own_etcd: EtcdServer,
    tmp_path: Path,
    projects: tuple[str, str],
    engine: docker.DockerClient,
    git_server: tuple[str, GitHttp, str],
) -> None:
    url, server, password = git_server
    wrong = f"wrong-{secrets.token_hex(8)}"
    up = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL, "--git-schemes", "http,https,ssh")
    try:
        mine, theirs = (User(up, p, engine) for p in projects)
        creds = {"data": {"username": USER, "password": password}}
        ref = {"url": url, "intervalSeconds": 2, "secretRef": {"name": "creds"}}
        apply(mine, tmp_path, record("GitSecret", "creds", creds),
              record("GitRepository", "site", ref),
              record("GitSecret", "bad", {"data": {"username": USER, "password": wrong}}),
              record("GitRepository", "bad", {**ref, "secretRef": {"name": "bad"}}),
              record("GitRepository", "anon", {"url": url, "intervalSeconds": 2}))  # fmt: skip
        apply(theirs, tmp_path, record("GitRepository", "site", ref))

        def web_runs() -> bool:
            return [c.labels["zun.openstack.org/name"] for c in mine.engine_containers()
                    if c.status == "running"] == ["web"]  # fmt: skip

        until(web_runs, RUNNING_WITHIN_S, lambda: mine.ctl("describe", "gitrepo", "site").stdout)
        until(lambda: reason(mine, "site") == "Applied", 30)
        until(lambda: reason(mine, "bad") == reason(mine, "anon") == "FetchFailed", 60)
        until(lambda: reason(theirs, "site") == "SecretNotFound", 60)
        assert theirs.records("containers") == [] and theirs.engine_containers() == []
        assert server.good in server.seen

        views = (
            ["get", "gitrepositories", "-o", "yaml"],
            ["get", "events", "-o", "json"],
            ["describe", "gitrepository", "site"],
        )
        shown = "".join(ok(u.ctl(*args)) for u in (mine, theirs) for args in views)
        for value in (password, wrong):
            assert value not in shown
            assert value not in up.log.read_text()
            for path in (default_data_dir() / "gitops").rglob("*"):
                assert value.encode() not in _bytes(path), path
    finally:
        up.stop()
