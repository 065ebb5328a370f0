"""A sandboxed project on a real engine with gVisor: `zun-controller api` and `run` on real
etcd, a Host on an extra dockerd that registers Debian's `runsc` (hack/dockerd.sh). A project
whose runtime an admin set to runsc gets its members' Containers and Application replicas run
under runsc (checked on the engine: HostConfig.Runtime, gVisor's kernel, HTTP through the
published port); a member's `runtime: runc` is refused on REST, the Zun v1 API and GitOps with
nothing written; an admin may still name runc. A Host whose runtime is runsc runs a container
naming none under it and does not take one naming runc."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from testbed.docker import HTTPD_V1, extra_engine_with_images, wait_http
from zun_bed import ZunBed, clean_engine
from zunctl_bed import ApiOnly

from zun_controller.errors import ConflictError
from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.host import Host
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
P = "/apis/zun.openstack.org/v1alpha1"
PROJECT = "sbx"
#: a project without a runtime of its own
OPEN = "open"
#: the extra engine's name (hack/dockerd.sh: at most 11 characters)
ENGINE = "s25bsbx"


@pytest.fixture(scope="module")
def sandbox_engine() -> Iterator[tuple[str, docker.DockerClient]]:
    with extra_engine_with_images(ENGINE) as url:
        client = docker.DockerClient(base_url=url, timeout=60)
        if "runsc" not in (client.info().get("Runtimes") or {}):
            pytest.skip("runsc is not installed (hack/setup.sh installs it)")
        yield url, client
        client.close()


class Bed:
    def __init__(self, api: ApiOnly, zun: ZunBed, engine: docker.DockerClient) -> None:
        self.api, self.zun, self.engine = api, zun, engine
        self.admin = self.client(api.token)
        self.member = self.admin

    def client(self, token: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}", "X-Auth-Token": token}
        return httpx.AsyncClient(base_url=self.api.url, headers=headers, timeout=30)

    async def post(self, who: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
        return await who.post(f"{P}/{path}", json=body)

    async def running(self, name: str, project: str = PROJECT) -> tuple[Container, Any]:
        obj = await self.zun.phase(name, project, "Running", within=90)
        return obj, self.engine.containers.get(obj.status.container_id or "")

    async def stored(self, plural: str) -> list[str]:
        found = await self.zun.kv.range(f"/zun/registry/{plural}/{PROJECT}/")
        return sorted(kv.key.rsplit("/", 1)[1] for kv in found.kvs)


def container(name: str, **spec: Any) -> dict[str, Any]:
    body = {"image": HTTPD_V1, "ports": [{"containerPort": 8080}], **spec}
    return {"kind": "Container", "metadata": {"name": name}, "spec": body}


def application(name: str, **c: Any) -> dict[str, Any]:
    template = {"containers": [{"name": "main", "image": HTTPD_V1, **c}]}
    spec = {"cluster": "local", "replicas": 1, "template": template}
    return {"kind": "Application", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
async def bed(
    own_etcd: EtcdServer, tmp_path: Path, sandbox_engine: tuple[str, docker.DockerClient]
) -> AsyncIterator[Bed]:
    url, engine = sandbox_engine
    api = ApiOnly(tmp_path, own_etcd.url)
    zun = ZunBed(own_etcd, tmp_path, (PROJECT, OPEN))
    b = Bed(api, zun, engine)
    try:
        await zun.host("sandbox", url)
        project = {"kind": "Project", "metadata": {"name": PROJECT}, "spec": {"runtime": "runsc"}}
        assert (await b.post(b.admin, "projects", project)).status_code == 201
        cluster = {"kind": "Cluster", "metadata": {"name": "local"}, "spec": {"type": "docker"}}
        assert (await b.post(b.admin, "clusters", cluster)).status_code == 201
        made = await b.post(
            b.admin, "tokens", {"name": "mallory", "role": "member", "projects": [PROJECT]}
        )
        assert made.status_code == 201, made.text
        b.member = b.client(made.json()["token"])
        zun.start()
        yield b
    finally:
        for c in (b.admin, b.member):
            await c.aclose()
        await zun.close()
        api.stop()
        clean_engine(engine, (PROJECT, OPEN))


@pytest.mark.timeout(300)
async def test_a_sandboxed_projects_containers_run_under_runsc_and_answer(bed: Bed) -> None:
    made = await bed.post(bed.member, f"projects/{PROJECT}/containers", container("web"))
    assert made.status_code == 201, made.text
    assert made.json()["spec"]["runtime"] == "runsc"
    obj, engine_ctr = await bed.running("web")
    assert engine_ctr.attrs["HostConfig"]["Runtime"] == "runsc"
    [port] = obj.status.ports
    answer = wait_http(f"http://127.0.0.1:{port.host_port}/", timeout=30)
    assert "zun-test httpd v1" in answer.text
    kernel = engine_ctr.exec_run(["uname", "-r"])
    assert (kernel.exit_code, kernel.output.decode().strip()) == (0, "4.4.0")  # gVisor's

    app = await bed.post(bed.member, f"projects/{PROJECT}/applications", application("shop"))
    assert app.status_code == 201, app.text

    async def replica_runtimes() -> list[str] | None:
        replicas = [
            c
            for c in (await bed.zun.store.list(Container, project=PROJECT)).items
            if c.name.startswith("shop-") and c.status.phase == "Running"
        ]
        found = [bed.engine.containers.get(c.status.container_id or "") for c in replicas]
        return [c.attrs["HostConfig"]["Runtime"] for c in found] or None

    assert await bed.zun.until(replica_runtimes, 90, "the replica runs") == ["runsc"]


@pytest.mark.timeout(300)
async def test_a_members_runc_is_refused_everywhere_and_an_admins_is_not(bed: Bed) -> None:
    where = f"projects/{PROJECT}/containers"
    refused = await bed.post(bed.member, where, container("escape", runtime="runc"))
    assert refused.status_code == 403, refused.text
    assert "spec.runtime" in refused.json()["message"]
    apps = f"projects/{PROJECT}/applications"
    refused = await bed.post(bed.member, apps, application("escape", runtime="runc"))
    assert refused.status_code == 403, refused.text
    assert "spec.template.containers[0].runtime" in refused.json()["message"]
    v1 = await bed.member.post(
        "/v1/containers", json={"image": HTTPD_V1, "name": "escape", "runtime": "runc"}
    )
    assert v1.status_code == 403, v1.text
    assert "spec.runtime" in v1.json()["errors"][0]["detail"]
    assert await bed.stored("containers") == [] and await bed.stored("applications") == []

    made = await bed.post(bed.member, where, container("boxed"))
    assert made.status_code == 201, made.text
    edited = made.json()
    edited["spec"]["runtime"] = "runc"  # and not by an update either
    put = await bed.member.put(f"{P}/{where}/boxed", json=edited)
    assert put.status_code == 403 and "spec.runtime" in put.json()["message"]

    admin = await bed.post(bed.admin, where, container("trusted", runtime="runc"))
    assert admin.status_code == 201, admin.text
    _, engine_ctr = await bed.running("trusted")
    assert engine_ctr.attrs["HostConfig"]["Runtime"] == "runc"
    _, boxed = await bed.running("boxed")
    assert boxed.attrs["HostConfig"]["Runtime"] == "runsc"


@pytest.mark.timeout(300)
async def test_a_hosts_runtime_runs_what_names_none_and_takes_nothing_else(bed: Bed) -> None:
    for _ in range(10):  # the Host reconciler writes its status meanwhile
        host = await bed.zun.store.get(Host, "sandbox")
        host.spec.runtime = "runsc"
        with contextlib.suppress(ConflictError):
            await bed.zun.store.update(host)
            break
    else:
        raise AssertionError("the Host could not be updated")
    made = await bed.post(bed.admin, f"projects/{OPEN}/containers", container("plain"))
    assert made.status_code == 201 and "runtime" not in made.json()["spec"], made.text
    _, engine_ctr = await bed.running("plain", OPEN)
    assert engine_ctr.attrs["HostConfig"]["Runtime"] == "runsc"

    where = f"projects/{PROJECT}/containers"
    made = await bed.post(bed.admin, where, container("trusted", runtime="runc"))
    assert made.status_code == 201, made.text

    async def passed_by() -> str | None:
        ready = (await bed.zun.container("trusted", PROJECT)).status.condition("Ready")
        return ready.message if ready and ready.reason == "Unschedulable" else None

    message = await bed.zun.until(passed_by, 60, "trusted is Unschedulable")
    assert "runs only runtime 'runsc'" in message, message
    assert (await bed.zun.container("trusted", PROJECT)).status.container_id is None


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip


def git_commit(path: Path, docs: list[dict[str, Any]]) -> None:
    if not path.exists():
        path.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=GIT_ENV, check=True)
    (path / "all.yaml").write_text(yaml.safe_dump_all(docs))
    for args in (["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", *args], cwd=path, env=GIT_ENV, check=True, capture_output=True)


def manifests(**gitweb: Any) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "zun.openstack.org/v1alpha1", **container(name, **extra)}
        for name, extra in (("gitweb", gitweb), ("git-escape", {"runtime": "runc"}))
    ]


@pytest.mark.timeout(300)
async def test_gitops_gets_the_sandbox_and_cannot_leave_it(bed: Bed, tmp_path: Path) -> None:
    git_commit(tmp_path / "repo", manifests())
    spec = {"url": f"file://{tmp_path / 'repo'}", "intervalSeconds": 2}
    await bed.zun.apply("GitRepository", "site", spec, project=PROJECT)

    async def refused() -> str | None:
        repo = await bed.zun.store.get(GitRepository, "site", PROJECT)
        cond = repo.status.condition("Ready")
        return cond.message if cond and cond.reason == "Refused" else None

    message = await bed.zun.until(refused, 90, "GitRepository condition Refused")
    assert "spec.runtime" in message and "runsc" in message, message
    assert await bed.stored("containers") == ["gitweb"]
    _, engine_ctr = await bed.running("gitweb")
    assert engine_ctr.attrs["HostConfig"]["Runtime"] == "runsc"

    # the next commit changes gitweb, still without a runtime: it keeps runsc
    git_commit(tmp_path / "repo", manifests(env=[{"name": "V", "value": "2"}]))

    async def updated() -> Container | None:
        obj = await bed.zun.container("gitweb", PROJECT)
        return obj if obj.spec.env else None

    assert (await bed.zun.until(updated, 60, "gitweb updated")).spec.runtime == "runsc"

    async def recreated() -> Any:
        obj = await bed.zun.container("gitweb", PROJECT)
        return obj.status.phase == "Running" and obj.status.container_id != engine_ctr.id and obj

    again = await bed.zun.until(recreated, 90, "gitweb recreated")
    live = bed.engine.containers.get(again.status.container_id)
    assert live.attrs["HostConfig"]["Runtime"] == "runsc"
    assert "V=2" in live.attrs["Config"]["Env"]
    assert await bed.stored("containers") == ["gitweb"]
