"""OpenStack's own clients against the Zun v1 API of `zun-controller up`: the `openstack
appcontainer` CLI (keystoneauth `none` auth, no-auth mode on) and python-zunclient's
`Client` (X-Auth-Token with one of our member tokens), both from PyPI in .venv-zunclient,
driving containers that really run on Docker (checked with the docker SDK)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from testbed.docker import (
    HTTP_PORT,
    HTTPD_V1,
    client,
    extra_engine_with_images,
    wait_http,
)
from testbed.registry import start_registry, stop_registry
from zun_bed import clean_engine
from zunctl_bed import ZUN, AllInOne

from zun_controller.models.base import LABEL_PROJECT, LABEL_UID
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
STEP = Path(__file__).with_name("zunclient_step.py")
ENGINE_NAME = "zunv1"
EXEC_OK = {"output": "py-exec\n", "exit_code": 0, "exec_id": None, "proxy_url": None}


@pytest.fixture(scope="module")
def clients() -> Path:
    """The bin directory of .venv-zunclient (made on first use: a pip install from PyPI)."""
    made = subprocess.run(
        [str(REPO / "hack" / "zunclient-venv.sh")],
        check=True, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return Path(made.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    """An engine of this module's own: other sessions' controllers on the shared main engine
    sweep every Zun container their stores do not know."""
    with extra_engine_with_images(ENGINE_NAME) as url:
        yield url


@pytest.fixture(scope="module")
def engine(engine_url: str) -> Iterator[docker.DockerClient]:
    sdk = client(engine_url)
    yield sdk
    sdk.close()


@pytest.fixture
def project(engine: docker.DockerClient) -> Iterator[str]:
    name = f"zv1{secrets.token_hex(3)}"
    yield name
    clean_engine(engine, (name,))


@pytest.fixture
def up(
    own_etcd: EtcdServer,
    tmp_path: Path,
    project: str,
    engine_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AllInOne]:
    monkeypatch.setenv("ZUN_V1_NOAUTH", "1")
    monkeypatch.setenv("ZUN_V1_PROJECT", project)
    aio = AllInOne(tmp_path, own_etcd.url, engine_url)
    yield aio
    aio.stop()


def until(check: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within}s: {what}")
        time.sleep(0.5)


def engine_state(engine: docker.DockerClient, uid: str) -> str | None:
    found = engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL_UID}={uid}"}
    )
    return found[0].status if len(found) == 1 else None if not found else "duplicated"


def engine_is(engine: docker.DockerClient, uid: str, state: str) -> Callable[[], bool]:
    return lambda: engine_state(engine, uid) == state


def engine_container(engine: docker.DockerClient, uid: str) -> Any:
    found = engine.containers.list(
        ignore_removed=True, all=True, filters={"label": f"{LABEL_UID}={uid}"}
    )
    return found[0] if len(found) == 1 else None


def started_at(engine: docker.DockerClient, uid: str) -> str | None:
    found = engine_container(engine, uid)
    return None if found is None else str(found.attrs["State"]["StartedAt"])


class Openstack:
    """`openstack appcontainer …` with keystoneauth's `none` auth (or, given `token`, its
    `admin_token` auth) and an endpoint override; every output is kept in `outputs`."""

    def __init__(self, bin_dir: Path, url: str, token: str | None = None) -> None:
        auth = ["--os-auth-type", "none"] if token is None else [
            "--os-auth-type", "admin_token", "--os-token", token]  # fmt: skip
        self.base = [str(bin_dir / "openstack"), *auth, "--os-endpoint", f"{url}/v1"]
        self.outputs: list[str] = []

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, "appcontainer", *args],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        self.outputs += [done.stdout, done.stderr]
        assert done.returncode == 0 or args[0] == "exec" or not ok, done.stderr
        return done

    def show(self, name: str) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self("show", name, "-f", "json").stdout)
        return shown

    def status_is(self, name: str, status: str, within: float = 60) -> dict[str, Any]:
        return until(lambda: (s := self.show(name))["status"] == status and s, within, status)  # type: ignore[no-any-return]


@pytest.mark.timeout(420)
def test_openstack_cli_runs_stops_starts_execs_and_deletes(
    clients: Path, up: AllInOne, engine: docker.DockerClient, project: str
) -> None:
    osc = Openstack(clients, up.url)
    made = json.loads(osc("run", "-f", "json", "--name", "web", HTTPD_V1).stdout)
    uid = made["uuid"]
    assert made["status"] == "Creating" and made["project_id"] == project
    shown = osc.status_is("web", "Running")
    assert engine_state(engine, uid) == "running" and shown["host"] == "local"
    listed = json.loads(osc("list", "-f", "json").stdout)
    assert [(c["uuid"], c["name"], c["status"]) for c in listed] == [(uid, "web", "Running")]
    done = until(lambda: (d := osc("exec", "web", "sh", "-c", "echo from-zun; exit 3"))
                 .returncode == 3 and d, 30, "exec")  # fmt: skip
    assert done.stdout.strip() == "from-zun"
    until(lambda: "listening on :8080" in osc("logs", "web").stdout, 30, "logs")
    assert "accepted" in osc("stop", "web").stdout
    osc.status_is("web", "Stopped")
    assert engine_state(engine, uid) == "exited"
    refused = osc("pause", "web").stdout
    assert "409" in refused and "in Stopped state" in refused
    osc("start", uid)
    osc.status_is(uid, "Running")
    assert engine_state(engine, uid) == "running"
    assert "409" in osc("delete", "web").stdout  # running: Zun wants --stop or --force
    osc("delete", "--stop", "web")
    until(lambda: engine_state(engine, uid) is None, 60, "engine container removed")
    until(lambda: json.loads(osc("list", "-f", "json").stdout) == [], 30, "empty list")


class PyClient:
    """python-zunclient's `Client` in .venv-zunclient, one step per process."""

    def __init__(self, bin_dir: Path, url: str, token: str) -> None:
        self.base = [str(bin_dir / "python"), str(STEP), f"{url}/v1", token]

    def __call__(self, *args: str) -> Any:
        done = subprocess.run(
            [*self.base, *args], check=True, capture_output=True, text=True, timeout=60
        )
        return json.loads(done.stdout)

    def status_is(self, ident: str, status: str, within: float = 60) -> dict[str, Any]:
        return until(lambda: (s := self("get", ident))["status"] == status and s, within, status)  # type: ignore[no-any-return]


def _member_token(etcd: str, project: str) -> str:
    made = subprocess.run(
        [ZUN, "token", "--name", "py", "--role", "member", "--project", project, "--etcd", etcd],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return made.stdout.strip()


@pytest.mark.timeout(420)
def test_python_zunclient_with_a_token(
    clients: Path, up: AllInOne, own_etcd: EtcdServer, engine: docker.DockerClient, project: str
) -> None:
    assert PyClient(clients, up.url, "zun_not-a-token")("list")["code"] == 401
    zun = PyClient(clients, up.url, _member_token(own_etcd.url, project))
    uid = zun("run", "py", HTTPD_V1)["uuid"]
    zun.status_is(uid, "Running")
    assert engine_state(engine, uid) == "running"
    assert [c["uuid"] for c in zun("list")] == [uid]
    until(lambda: zun("execute", "py", '"sh" "-c" "echo py-exec"') == EXEC_OK, 30, "exec")
    until(lambda: "listening on :8080" in str(zun("logs", uid)), 30, "logs")
    for action, status, real in [("pause", "Paused", "paused"), ("unpause", "Running", "running"),
                                 ("stop", "Stopped", "exited"), ("start", "Running", "running"),
                                 ("kill", "Stopped", "exited")]:  # fmt: skip
        zun(action, uid)
        zun.status_is(uid, status)
        until(engine_is(engine, uid, real), 30, f"engine {real}")
    zun("start", uid)
    zun.status_is(uid, "Running")
    until(engine_is(engine, uid, "running"), 30, "engine running")
    first = engine_container(engine, uid)
    zun("reboot", uid)  # restarted in place: same container, started again
    until(lambda: started_at(engine, uid) != first.attrs["State"]["StartedAt"], 60, "restart")
    assert engine_container(engine, uid).id == first.id
    zun.status_is(uid, "Running")
    stats = zun("stats", uid)
    assert {"CPU %", "MEM USAGE(MiB)", "MEM LIMIT(MiB)", "NET I/O(B)"} <= set(stats), stats
    assert stats["MEM USAGE(MiB)"] > 0
    top = zun("top", uid)
    assert "PID" in top["Titles"] and any("httpd" in " ".join(p) for p in top["Processes"])
    zun("rebuild", uid)  # made again from its image: a new container
    until(lambda: (c := engine_container(engine, uid)) is not None and c.id != first.id
          and c.status == "running", 60, "rebuilt")  # fmt: skip
    zun.status_is(uid, "Running")
    assert zun("update", uid, "128")["memory"] == "128M"
    renamed = zun("rename", uid, "py_renamed")
    assert (renamed["uuid"], renamed["name"]) == (uid, "py_renamed")
    assert zun("get", "py_renamed")["uuid"] == uid
    zun("delete", uid)
    until(lambda: engine_state(engine, uid) is None, 60, "engine container removed")
    assert zun("get", uid)["code"] == 404


def _image_row(admin: Openstack, repo: str, tag: str) -> dict[str, Any] | None:
    """The `image list` row of repo:tag (one Host here), None when there is none."""
    rows = json.loads(admin("image", "list", "-f", "json").stdout)
    found = [r for r in rows if (r["repo"], r["tag"]) == (repo, tag)]
    assert len(found) <= 1, found
    return found[0] if found else None


def _image_delete_refused_while_used(
    osc: Openstack, admin: Openstack, engine: docker.DockerClient, project: str, image: str
) -> dict[str, Any]:
    """`image show` and `image delete` of `image`'s row while container web runs it: 403
    for a member, refused for an admin naming web, and the engine keeps the image."""
    repo, _, tag = image.rpartition(":")
    row = _image_row(admin, repo, tag)
    assert row is not None
    shown = json.loads(admin("image", "show", row["uuid"], "-f", "json").stdout)
    assert (shown["host"], shown["image_id"]) == ("local", row["image_id"])
    assert "403" in osc("image", "delete", row["uuid"]).stdout  # admin only, as upstream
    held = admin("image", "delete", row["uuid"]).stdout  # the CLI prints failures, exits 0
    assert "failed" in held and f"in use by container web (project {project}" in held, held
    assert _image_row(admin, repo, tag) == row
    assert engine.images.get(image).id == row["image_id"]  # never forced
    return row


def _registry_delete_refused_while_used(osc: Openstack, project: str, uuid: str) -> None:
    """`registry delete` of the registry container web names: refused naming web (the CLI
    prints the 409 and exits 0), the registry still listed, web still running."""
    refused = osc("registry", "delete", "private").stdout
    assert "failed" in refused and f"used by Container {project}/web" in refused, refused
    assert "409" in refused
    listed = json.loads(osc("registry", "list", "-f", "json").stdout)
    assert [r["uuid"] for r in listed] == [uuid]
    assert osc.show("web")["status"] == "Running"  # what runs keeps running


def _image_deleted_once_unused(
    admin: Openstack, engine: docker.DockerClient, project: str, image: str, row: dict[str, Any]
) -> None:
    """Once the project's containers left the engine, `image delete` removes the tag: gone
    from `image list` and from the engine, the image's other tags kept."""
    labels = {"label": f"{LABEL_PROJECT}={project}"}
    until(lambda: not engine.containers.list(all=True, filters=labels), 60, "containers gone")
    gone = admin("image", "delete", row["uuid"]).stdout
    assert "has been accepted" in gone, gone
    repo, _, tag = image.rpartition(":")
    assert _image_row(admin, repo, tag) is None
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(image)
    assert engine.images.get(HTTPD_V1).id == row["image_id"]  # the same image: only untagged


def _host_port(shown: dict[str, Any]) -> int:
    (published,) = [p for p in shown["published_ports"] if p["containerPort"] == HTTP_PORT]
    assert published["hostIp"] == "127.0.0.1", published
    return int(published["hostPort"])


@pytest.mark.timeout(480)
def test_openstack_cli_runs_a_private_image_through_a_registry(
    clients: Path, up: AllInOne, engine: docker.DockerClient, project: str
) -> None:
    run = secrets.token_hex(4)
    user, password = "alice", f"Pw-{run}-zv1"
    registry = start_registry(f"zv1r-{run}", tls=True, user=user, password=password)
    osc, admin = Openstack(clients, up.url), Openstack(clients, up.url, up.token)
    try:
        repository = f"zun-test-{run}/httpd"
        registry.push(engine.api, HTTPD_V1, repository, "v1")
        image = registry.ref(repository, "v1")
        made = json.loads(osc("registry", "create", "--name", "private", "--domain", registry.host,
                              "--username", user, "--password", "wrong-" + password,
                              "-f", "json").stdout)  # fmt: skip
        assert (made["domain"], made["username"], made["password"]) == (registry.host, user, "***")
        (listed,) = json.loads(osc("registry", "list", "-f", "json").stdout)
        assert (listed["uuid"], listed["password"]) == (made["uuid"], "***")
        osc("run", "--name", "web", "--registry", "private", "--image-pull-policy", "always",
            "--expose-port", str(HTTP_PORT), image)  # fmt: skip
        failed = osc.status_is("web", "Error", within=90)
        assert "unauthorized" in failed["status_reason"], failed
        updated = json.loads(osc("registry", "update", "private", "--password", password,
                                 "-f", "json").stdout)  # fmt: skip
        assert updated["password"] == "***"
        shown = osc.status_is("web", "Running", within=120)  # new credentials: pulled at once
        assert (shown["registry_id"], shown["image_pull_policy"]) == (made["uuid"], "always")
        assert wait_http(f"http://127.0.0.1:{_host_port(shown)}/", timeout=30).status_code == 200
        assert registry.pulls(repository, "v1") >= 1
        rows = json.loads(admin("image", "list", "-f", "json").stdout)
        assert any(r["repo"] == f"{registry.host}/{repository}" and r["tag"] == "v1" for r in rows)
        assert "403" in osc("image", "list", ok=False).stderr  # admin only, as upstream
        pulled = json.loads(admin("image", "pull", image, "local", "-f", "json").stdout)
        assert (pulled["repo"], pulled["tag"], pulled["host"]) == (
            f"{registry.host}/{repository}", "v1", "local")  # fmt: skip
        refused = admin("image", "pull", f"{registry.host}/{repository}:nope", "local", ok=False)
        assert refused.returncode != 0 and "manifest unknown" in refused.stderr, refused.stderr
        row = _image_delete_refused_while_used(osc, admin, engine, project, image)
        _registry_delete_refused_while_used(osc, project, made["uuid"])
        osc("delete", "--stop", "web")
        until(lambda: json.loads(osc("list", "-f", "json").stdout) == [], 60, "deleted")
        _image_deleted_once_unused(admin, engine, project, image, row)
        deleted = osc("registry", "delete", "private").stdout  # no user left
        assert "has been accepted" in deleted, deleted
        assert json.loads(osc("registry", "list", "-f", "json").stdout) == []
    finally:
        stop_registry(registry, engine.api)
    everything = "\n".join(osc.outputs + admin.outputs)
    assert password not in everything
