"""Hostile input and I/O, end to end: one test per bound (docs/security.md, "Bounded input and
I/O"), each driving the product as a tenant would (a git repository, the REST and v1 APIs,
/metrics) against real etcd and Docker, and looking at what the controller did and holds."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from zun_bed import ZunBed, clean_engine
from zunctl_bed import ZUN, free_port

from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
P = "/apis/zun.openstack.org/v1alpha1"
V1 = {"OpenStack-API-Version": "container 1.40"}
MiB = 1024 * 1024
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip
#: ~300 bytes that an alias-keeping loader expands to 9**8 leaves (~200 MB once formatted)
BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=True)
    )
    + "apiVersion: *h\nkind: Container\nmetadata: {name: boom}\nspec: {image: x}\n"
)


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


def rss_mib(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else 0.0


def git_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", *args], cwd=path, env=GIT_ENV, check=True, capture_output=True)
    return path


def container_doc(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
                           "metadata": {"name": name}, "spec": {"image": HTTPD_V1}})  # fmt: skip


@pytest.fixture
async def gitops(own_etcd: EtcdServer, tmp_path: Path) -> AsyncIterator[ZunBed]:
    zun = ZunBed(own_etcd, tmp_path, ())
    yield zun
    await zun.close()


async def condition(zun: ZunBed, name: str, project: str) -> tuple[str, str] | None:
    repo = await zun.store.get(GitRepository, name, project)
    cond = repo.status.condition("Ready")
    return (cond.reason or "", cond.message or "") if cond and repo.status.phase else None


@pytest.mark.timeout(180)
async def test_an_alias_bomb_in_a_repository_is_an_error_and_the_controller_serves_others(
    gitops: ZunBed, tmp_path: Path
) -> None:
    bomb = git_repo(tmp_path / "bomb", {"boom.yaml": BOMB})
    good = git_repo(tmp_path / "good", {"web.yaml": container_doc("web")})
    gitops.start()
    assert gitops.proc is not None
    for project, repo in (("hostile", bomb), ("victim", good)):
        spec = {"url": f"file://{repo}", "intervalSeconds": 2}
        await gitops.apply("GitRepository", "site", spec, project=project)
    peak = 0.0

    async def failed() -> tuple[str, str] | None:
        nonlocal peak
        assert gitops.proc is not None
        peak = max(peak, rss_mib(gitops.proc.pid))
        found = await condition(gitops, "site", "hostile")
        return found if found and found[0] == "InvalidManifest" else None

    _, message = await gitops.until(failed, 60, "the bomb repository's InvalidManifest")
    assert "boom.yaml" in message and "aliases" in message and len(message) < 1000
    await gitops.until(lambda: condition(gitops, "site", "victim"), 60, "the other repo synced")
    assert (await condition(gitops, "site", "victim")) is not None
    assert (await gitops.container("web", "victim")).spec.image == HTTPD_V1
    for _ in range(10):  # resyncs every 2 s keep refusing it, memory stays flat
        peak = max(peak, rss_mib(gitops.proc.pid))
        await asyncio.sleep(0.5)
    assert peak < 400, f"controller RSS reached {peak:.0f} MiB"
    assert gitops.proc.poll() is None


@pytest.mark.timeout(120)
async def test_a_file_url_is_refused_by_default_and_nothing_is_applied(
    gitops: ZunBed, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "local", {"web.yaml": container_doc("stolen")})
    gitops.git_schemes = "https,ssh"  # the default: no admin setting
    gitops.start()
    await gitops.apply("GitRepository", "site", {"url": f"file://{repo}"}, project="hostile")
    await gitops.apply("GitRepository", "path", {"url": str(repo)}, project="hostile")
    for name in ("site", "path"):
        reason, message = await gitops.until(
            functools.partial(condition, gitops, name, "hostile"), 60, "a URLNotAllowed condition"
        )
        assert reason == "URLNotAllowed" and "'file'" in message
    page = await gitops.store.list(Container, "hostile")
    assert page.items == []


class Server:
    """`zun-controller up` with the environment a test gives it; its API and metrics URLs."""

    def __init__(self, workdir: Path, etcd_url: str, env: dict[str, str]) -> None:
        self.api_port, self.health_port = free_port(), free_port()
        self.log = workdir / "up.log"
        cmd = [ZUN, "up", "--etcd", etcd_url, "--data-dir", str(workdir / "data"),
               "--api-port", str(self.api_port), "--health-port", str(self.health_port),
               "--docker", MAIN_SOCKET_URL]  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}
            )
        self.token = self._token()
        self.url = f"http://127.0.0.1:{self.api_port}"

    def _token(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if found := re.search(r"ZUN_TOKEN=(\S+)", self.log.read_text()):
                return found.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"no token printed:\n{self.log.read_text()[-3000:]}")

    def client(self, **headers: str) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers={**auth, **headers}, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def project(engine: docker.DockerClient) -> Iterator[str]:
    name = f"hio{secrets.token_hex(3)}"
    yield name
    clean_engine(engine, (name,))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient, project: str
) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("hostile-io")
    etcd = EtcdServer(workdir / "etcd")
    etcd.start()
    env = {"ZUN_V1_NOAUTH": "1", "ZUN_V1_PROJECT": project, "ZUN_API_EXEC_TIMEOUT": "3",
           "ZUN_API_STREAMS_PER_TOKEN": "3"}  # fmt: skip
    up = Server(workdir, etcd.url, env)
    yield up
    up.stop()
    etcd.stop()


async def running(server: Server, project: str, name: str) -> dict[str, Any]:
    async with server.client() as c:
        body = {"kind": "Container", "metadata": {"name": name}, "spec": {"image": HTTPD_V1}}
        made = await c.post(f"{P}/projects/{project}/containers", json=body)
        assert made.status_code in (201, 409), made.text
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            obj: dict[str, Any] = (await c.get(f"{P}/projects/{project}/containers/{name}")).json()
            if obj.get("status", {}).get("phase") == "Running":
                return obj
            await asyncio.sleep(0.5)
    raise AssertionError(f"{project}/{name} not Running")


@pytest.mark.timeout(240)
async def test_exec_answers_bounded_and_stops_commands_past_their_time(
    server: Server, project: str, engine: docker.DockerClient
) -> None:
    obj = await running(server, project, "web")
    path = f"{P}/projects/{project}/containers/web"
    flood = ["sh", "-c", "head -c 50000000 /dev/zero | tr '\\0' x"]
    async with server.client() as c:
        started = time.monotonic()
        r = await c.post(f"{path}/exec", json={"command": flood})
        assert r.status_code == 200, r.text[:300]
        body = r.json()
        assert len(body["output"]) == MiB and body.get("truncated") is True
        assert time.monotonic() - started < 30
        assert rss_mib(server.proc.pid) < 600
        made = await c.post(
            f"{P}/tokens", json={"name": "other", "role": "member", "projects": [project]}
        )
        other = made.json()["token"]
        started = time.monotonic()
        sleepers = [c.post(f"{path}/exec", json={"command": ["sleep", "300"]}) for _ in range(3)]
        logs = c.get(f"{path}/log", params={"tailLines": 5})
        hello = c.post(
            f"{path}/exec",
            json={"command": ["echo", "hi"]},
            headers={"Authorization": f"Bearer {other}"},
        )
        answers = await asyncio.gather(*sleepers, logs, hello)
        assert time.monotonic() - started < 20
    codes = sorted(a.status_code for a in answers[:3])
    assert codes == [200, 200, 429], [a.text for a in answers[:3]]
    assert all(a.json()["timedOut"] is True for a in answers[:3] if a.status_code == 200)
    assert answers[3].status_code == 200
    assert answers[4].json()["output"] == "hi\n", answers[4].text
    inside = engine.containers.get(obj["status"]["containerId"]).top()["Processes"]
    assert not [p for p in inside if "sleep 300" in " ".join(p)], inside


@pytest.mark.timeout(120)
async def test_a_10_mib_body_is_413_and_creates_nothing(server: Server, project: str) -> None:
    body = {"kind": "Container", "metadata": {"name": "huge"},
            "spec": {"image": HTTPD_V1, "command": ["x" * (10 * MiB)]}}  # fmt: skip
    async with server.client() as c:
        r = await c.post(f"{P}/projects/{project}/containers", json=body)
        assert r.status_code == 413
        assert r.json()["kind"] == "Status" and r.json()["code"] == 413
        assert (await c.get(f"{P}/projects/{project}/containers/huge")).status_code == 404
        v1 = await c.post("/v1/containers", json={"image": HTTPD_V1, "command": "x" * 10 * MiB})
        assert v1.status_code == 413 and v1.json()["errors"][0]["status"] == 413


@pytest.mark.timeout(120)
async def test_noauth_refuses_foreign_origins_and_hosts(server: Server, project: str) -> None:
    create = {"image": HTTPD_V1, "name": "csrf", "command": "sleep 1"}
    async with httpx.AsyncClient(base_url=server.url, headers=V1, timeout=30) as c:
        page = await c.post(
            "/v1/containers", json=create, headers={"Origin": "http://evil.example"}
        )
        assert page.status_code == 403, page.text
        rebound = await c.post(
            "/v1/containers", json=create, headers={"Host": f"evil.example:{server.api_port}"}
        )
        assert rebound.status_code == 403, rebound.text
        form = await c.post("/v1/containers", content=b"image=x", headers={"content-type":
                            "application/x-www-form-urlencoded"})  # fmt: skip
        assert form.status_code == 415, form.text
        listed = (await c.get("/v1/containers")).json()["containers"]
    assert [x for x in listed if x.get("name") == "csrf"] == []


@pytest.mark.timeout(60)
def test_noauth_refuses_to_listen_on_every_interface(tmp_path: Path, own_etcd: EtcdServer) -> None:
    env = {**os.environ, "ZUN_V1_NOAUTH": "1"}
    cmd = [ZUN, "api", "--etcd", own_etcd.url, "--api-port", str(free_port()),
           "--listen-address", "0.0.0.0"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert proc.returncode == 1, out.decode()[-2000:]
    assert b"NoAuthNotLoopback" in out


@pytest.mark.timeout(150)
async def test_metrics_name_no_project_or_record(server: Server, project: str) -> None:
    await running(server, project, "payroll")
    metrics = f"http://127.0.0.1:{server.health_port}/metrics"
    async with httpx.AsyncClient(timeout=30) as c:
        deadline = time.monotonic() + 60
        text = ""
        while "zun_container_memory_bytes{" not in text and time.monotonic() < deadline:
            text = (await c.get(metrics)).text
            await asyncio.sleep(1)
    assert "zun_container_memory_bytes{" in text and 'zun_records{kind="Container"' in text
    assert project not in text and "payroll" not in text


@pytest.mark.timeout(120)
async def test_too_many_watches_of_one_token_are_429(server: Server, project: str) -> None:
    url = f"{P}/projects/{project}/containers?watch=true"
    async with server.client() as c:
        held = [c.stream("GET", url) for _ in range(3)]
        opened = [await s.__aenter__() for s in held]
        assert all(r.status_code == 200 for r in opened)
        extra = await c.get(url)
        assert extra.status_code == 429 and extra.headers["retry-after"]
        assert extra.json()["reason"] == "TooManyRequests"
        for stream in held:
            await stream.__aexit__(None, None, None)
        deadline = time.monotonic() + 10
        while (again := await c.get(f"{url}&timeoutSeconds=1")).status_code == 429:
            assert time.monotonic() < deadline, "closed watches did not give their slots back"
            await asyncio.sleep(0.2)
        assert again.status_code == 200
