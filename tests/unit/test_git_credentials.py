"""GitRepository credentials only from the record's own GitSecret: the environment git gets,
real git against a smart-http server with basic auth on 127.0.0.1 (git http-backend under a
WSGI server), the credential helper's host check, and redaction of logs and status."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_gitops import container_doc, git, until

from zun_controller.api.access import visible
from zun_controller.api.auth import Principal, Role
from zun_controller.engine.manager import Manager
from zun_controller.errors import InvalidError, NotFoundError, PermanentError, TransientError
from zun_controller.gitops.credentials import GitAuth, auth_env
from zun_controller.gitops.git import Mirror, git_env, redact
from zun_controller.gitops.policy import GitPolicy
from zun_controller.gitops.setup import register_gitops
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.gitsecret import GitSecret
from zun_controller.models.registry import parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from testbed.git_http import GitHttp, serve  # tests/e2e/testbed, put on the path above

USER, PASSWORD = "zun", "s3cret-pa55word"
HTTP = GitPolicy.allowing("http")  # the local server has no TLS
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
KNOWN = "git.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, GitHttp]]:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "a.yaml").write_text(yaml.safe_dump(container_doc("a")))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "c")
    git(tmp_path, "clone", "-q", "--bare", str(work), str(tmp_path / "srv" / "site.git"))
    with serve(tmp_path / "srv", USER, PASSWORD) as (base, app):
        yield f"{base}/site.git", app


@pytest.fixture
def controller_has_credentials(
    tmp_path: Path, server: tuple[str, GitHttp], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The controller's own environment holds working credentials for the server: a global
    store helper with the password, an askpass that prints it, an agent socket."""
    url = server[0]
    home = tmp_path / "controller-home"
    home.mkdir()
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    host = url.split("/")[2]
    (home / ".git-credentials").write_text(f"http://{USER}:{PASSWORD}@{host}\n")
    askpass = home / "askpass"
    askpass.write_text(f"#!/bin/sh\necho {PASSWORD}\n")
    askpass.chmod(0o700)
    for name, value in {"HOME": str(home), "GIT_ASKPASS": str(askpass),
                        "SSH_AUTH_SOCK": str(home / "agent.sock")}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    return {"HOME": str(home), "PATH": "/usr/bin:/bin"}


def test_git_gets_no_helper_key_agent_or_known_host_of_the_controllers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    env = git_env(tmp_path / "home", GitPolicy())
    assert env["HOME"] == str(tmp_path / "home") and "SSH_AUTH_SOCK" not in env
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ASKPASS"] == "/bin/false"
    assert (env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == (
        "1",
        "credential.helper",
        "",
    )
    ssh = env["GIT_SSH_COMMAND"]
    for option in ("-F /dev/null", "-o IdentitiesOnly=yes", "-o IdentityFile=none",
                   "-o IdentityAgent=none", "-o StrictHostKeyChecking=yes",
                   "-o UserKnownHostsFile=/dev/null", "-o GlobalKnownHostsFile=/dev/null",
                   "-o BatchMode=yes"):  # fmt: skip
        assert option in ssh
    assert not any(k.startswith("ZUN_GIT_") for k in env)


def ssh_config(command: str) -> dict[str, list[str]]:
    """What the real ssh makes of `command` (`ssh -G`: the resolved options, no connection)."""
    done = subprocess.run(
        ["sh", "-c", f"{command} -G git@git.example.org"],
        env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    config: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key, []).append(value)
    return config


def test_ssh_gets_only_the_secrets_key_and_host_keys_for_one_run(tmp_path: Path) -> None:
    auth = GitAuth(identity=KEY, known_hosts=KNOWN)
    parent = tmp_path / "a cache"  # ssh splits option values at blanks unless quoted
    parent.mkdir()
    with auth.files(parent) as files:
        env = auth_env("git@git.example.org:team/site.git", auth, files)
        assert files.identity is not None and files.known_hosts is not None
        assert stat.S_IMODE(files.identity.stat().st_mode) == 0o600
        assert stat.S_IMODE(files.identity.parent.stat().st_mode) == 0o700
        assert files.identity.read_text() == KEY + "\n"
        assert files.known_hosts.read_text() == KNOWN
        ssh = ssh_config(env["GIT_SSH_COMMAND"])
        assert ssh["identityfile"] == [str(files.identity)]
        assert ssh["userknownhostsfile"] == [str(files.known_hosts)]
    assert list(parent.iterdir()) == []
    assert (ssh["stricthostkeychecking"], ssh["identitiesonly"], ssh["batchmode"]) == (
        ["true"],
        ["yes"],
        ["yes"],
    )
    assert ssh["identityagent"] == ["none"] and ssh["globalknownhostsfile"] == ["/dev/null"]
    assert ssh["forwardagent"] == ["no"] and "proxycommand" not in ssh
    anonymous = ssh_config(auth_env("git@git.example.org:x", GitAuth(), None)["GIT_SSH_COMMAND"])
    assert anonymous["identityfile"] == ["none"]
    assert anonymous["userknownhostsfile"] == ["/dev/null"]
    assert KEY not in repr(auth) and PASSWORD not in repr(GitAuth(USER, PASSWORD))
    assert "ZUN_GIT_PASSWORD" not in env  # https credentials are not handed to ssh


async def test_an_ssh_url_without_known_hosts_is_refused_before_git_runs(tmp_path: Path) -> None:
    for auth in (None, GitAuth(identity=KEY)):
        mirror = Mirror(tmp_path / "cache", "ssh://git@127.0.0.1:9/site.git")
        with pytest.raises(PermanentError) as caught:
            await mirror.fetch("main", auth)
        assert caught.value.reason == "HostKeysUnknown"
        assert not mirror.dir.exists()


async def test_the_controllers_own_credentials_are_never_used(
    tmp_path: Path, server: tuple[str, GitHttp], controller_has_credentials: dict[str, str]
) -> None:
    url, app = server
    as_controller = await asyncio.to_thread(
        subprocess.run,
        ["git", "ls-remote", url],
        env=controller_has_credentials,
        capture_output=True,
        check=False,
    )
    assert as_controller.returncode == 0  # they work: a git with the controller's env gets in
    app.seen.clear()
    mirror = Mirror(tmp_path / "cache", url, HTTP)
    with pytest.raises(TransientError):
        await mirror.fetch("main")
    assert app.seen and app.good not in app.seen


async def test_the_secrets_credentials_fetch_and_stay_out_of_the_clone(
    tmp_path: Path, server: tuple[str, GitHttp], controller_has_credentials: dict[str, str]
) -> None:
    url, app = server
    mirror = Mirror(tmp_path / "cache", url, HTTP)
    commit = await mirror.fetch("main", GitAuth(USER, PASSWORD))
    assert list(await mirror.manifests(commit, ".")) == ["a.yaml"]
    assert app.good in app.seen
    assert (await mirror.fetch("main", GitAuth(USER, PASSWORD))) == commit
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    assert url in (mirror.dir / "config").read_text()


async def test_a_refused_password_is_not_in_the_log_or_the_error(
    tmp_path: Path, server: tuple[str, GitHttp], caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = server
    wrong = "wr0ng-but-secret"
    mirror = Mirror(tmp_path / "cache", url, HTTP)
    with caplog.at_level(logging.WARNING), pytest.raises(TransientError) as caught:
        await mirror.fetch("main", GitAuth(USER, wrong))
    assert wrong not in str(caught.value)
    logged = [str(r.__dict__) for r in caplog.records]
    assert logged and not any(wrong in line for line in logged)
    assert redact(f"fatal: {wrong} and {PASSWORD}", [wrong, PASSWORD, ""]) == (
        "fatal: <redacted> and <redacted>"
    )


def test_the_helper_answers_only_the_urls_own_protocol_and_host(tmp_path: Path) -> None:
    url = "https://git.example.org:8443/site.git"
    env = git_env(tmp_path, GitPolicy(), auth_env(url, GitAuth(USER, PASSWORD), None))

    def fill(protocol: str, host: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "credential", "fill"], input=f"protocol={protocol}\nhost={host}\n\n",
            env=env, capture_output=True, text=True, check=False, timeout=10,
        )  # fmt: skip

    asked = fill("https", "git.example.org:8443")
    assert asked.returncode == 0 and f"password={PASSWORD}" in asked.stdout
    for protocol, host in [("https", "evil.example"), ("http", "git.example.org:8443"),
                           ("https", "git.example.org")]:  # fmt: skip
        other = fill(protocol, host)
        assert other.returncode != 0 and PASSWORD not in other.stdout + other.stderr


def record(kind: str, spec: dict[str, Any], name: str = "site") -> Any:
    return parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "project": "demo"},
            "spec": spec,
        }
    )


def test_credentials_belong_in_a_git_secret_not_the_url_or_anywhere_loose() -> None:
    def repo(url: str) -> Any:
        return record("GitRepository", {"url": url})

    for url in (f"https://{USER}:{PASSWORD}@example.org/r.git", "https://tok@example.org/r"):
        with pytest.raises(InvalidError) as caught:
            repo(url)
        assert caught.value.errors[0].path == "spec.url" and PASSWORD not in str(caught.value)
    assert repo("ssh://git@example.org/r.git").spec.secret_ref is None

    def secret(data: dict[str, str]) -> Any:
        return record("GitSecret", {"data": data}, "creds")

    for data in ({"password": PASSWORD}, {USER: "x"}, {"username": USER, "password": "a\nb"},
                 {"identity": PASSWORD}, {"token": PASSWORD}):  # fmt: skip
        with pytest.raises(InvalidError) as caught:
            secret(data)
        assert PASSWORD not in str(caught.value)
    assert isinstance(secret({"identity": KEY, "known_hosts": KNOWN}), GitSecret)
    mine = secret({"username": USER, "password": PASSWORD})
    assert visible(Principal("m", Role.MEMBER, frozenset({"demo"})), mine)
    assert not visible(Principal("r", Role.READER, frozenset({"demo"})), mine)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordStore]:
    store = RecordStore(MemoryKV())
    manager = Manager(metrics=Metrics(), health_port=None)
    register_gitops(manager, store, manager.metrics, tmp_path / "cache", git_policy=HTTP)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    yield store
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_repository_fetches_with_its_projects_secret_only(
    store: RecordStore, server: tuple[str, GitHttp], tmp_path: Path
) -> None:
    url, _ = server
    data = {"username": USER, "password": PASSWORD}
    doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "GitSecret",
           "metadata": {"name": "creds", "project": "demo"}, "spec": {"data": data}}  # fmt: skip
    await store.create(parse(doc))
    for project in ("demo", "other"):
        spec = {"url": url, "intervalSeconds": 1, "secretRef": {"name": "creds"}}
        repo = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "GitRepository",
                "metadata": {"name": "site", "project": project}, "spec": spec}  # fmt: skip
        await store.create(parse(repo))

    async def ready(project: str, reason: str) -> GitRepository | None:
        got = await store.get(GitRepository, "site", project)
        cond = got.status.condition("Ready")
        return got if cond is not None and cond.reason == reason else None

    mine = await until(lambda: ready("demo", "Applied"))
    assert (await store.get(Container, "a", "demo")).spec.image == "zun-test/httpd:v1"
    theirs = await until(lambda: ready("other", "SecretNotFound"))
    assert "no GitSecret 'creds' in project 'other'" in theirs.status.condition("Ready").message
    with pytest.raises(NotFoundError):
        await store.get(Container, "a", "other")
    for shown in (mine, theirs):
        assert PASSWORD not in shown.model_dump_json()
    assert len([p for p in (tmp_path / "cache").iterdir() if p.name != ".home"]) == 1
    assert not os.environ.get("ZUN_GIT_PASSWORD")


def test_key_files_a_crashed_fetch_left_are_removed_when_the_controller_starts(
    tmp_path: Path,
) -> None:
    leftover = tmp_path / "cache" / ".home" / "ssh-crashed"
    leftover.mkdir(parents=True)
    (leftover / "identity").write_text(KEY)
    kept = tmp_path / "cache" / "0123456789abcdef"
    kept.mkdir()
    manager = Manager(metrics=Metrics(), health_port=None)
    register_gitops(manager, RecordStore(MemoryKV()), manager.metrics, tmp_path / "cache")
    assert not leftover.exists() and kept.exists()
