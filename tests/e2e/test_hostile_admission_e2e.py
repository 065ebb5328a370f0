"""A hostile member against one admission path, through a running `zun-controller api` (and,
for GitOps, `zun-controller run`) on real etcd: each test is one finding of the tenant
isolation review, and checks what etcd holds afterwards, not only the answer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from testbed.kube import KubeControlPlane, start_control_plane
from zun_bed import ZUN, Process, ZunBed
from zunctl_bed import ApiOnly

from zun_controller.models.container import Container
from zun_controller.models.gitrepository import GitRepository
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
P = "/apis/zun.openstack.org/v1alpha1"
MERGE = {"Content-Type": "application/merge-patch+json"}
IMAGE = "zun-test/httpd:v1"


@pytest.fixture
def api(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[ApiOnly]:
    server = ApiOnly(tmp_path, own_etcd.url)
    yield server
    server.stop()


class Tenants:
    """The admin, a member and a reader of project `t`, and etcd to look at."""

    def __init__(self, api: ApiOnly, etcd: EtcdServer) -> None:
        self.api, self.etcd, self.kv = api, etcd, EtcdKV.from_url(etcd.url)
        self.admin = self.as_(api.token)
        self.member = self.reader = self.admin

    def as_(self, token: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}", "X-Auth-Token": token}
        return httpx.AsyncClient(base_url=self.api.url, headers=headers, timeout=30)

    async def token(self, name: str, role: str) -> httpx.AsyncClient:
        made = await self.admin.post(
            f"{P}/tokens", json={"name": name, "role": role, "projects": ["t"]}
        )
        assert made.status_code == 201, made.text
        return self.as_(made.json()["token"])

    async def report(self, name: str, phase: str) -> None:
        """Write the status the controller would (no controller runs here)."""
        store = RecordStore(self.kv)
        obj = await store.get(Container, name, "t")
        obj.status.phase = phase
        obj.status.container_id = "c0ffee"
        await store.update_status(obj)

    async def stored(self, plural: str, project: str = "t") -> list[str]:
        found = await self.kv.range(f"/zun/registry/{plural}/{project}/")
        return sorted(kv.key.rsplit("/", 1)[1] for kv in found.kvs)


@pytest.fixture
async def t(api: ApiOnly, own_etcd: EtcdServer) -> AsyncIterator[Tenants]:
    tenants = Tenants(api, own_etcd)
    tenants.member = await tenants.token("mallory", "member")
    tenants.reader = await tenants.token("rita", "reader")
    yield tenants
    for c in (tenants.admin, tenants.member, tenants.reader):
        await c.aclose()
    await tenants.kv.close()


def ctr(name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": "Container", "metadata": {"name": name}, "spec": {"image": IMAGE, **spec}}


def app(name: str, replicas: int = 1, **container: Any) -> dict[str, Any]:
    template = {"containers": [{"name": "web", "image": IMAGE, **container}]}
    spec = {"cluster": "c", "replicas": replicas, "template": template}
    return {"kind": "Application", "metadata": {"name": name}, "spec": spec}


@pytest.mark.timeout(120)
async def test_member_cannot_set_runtime_through_an_application_template_or_v1(
    t: Tenants,
) -> None:
    r = await t.member.post(f"{P}/projects/t/applications", json=app("a", runtime="runc"))
    assert r.status_code == 403, r.text
    assert "spec.template.containers[0].runtime" in r.json()["message"]
    v1 = await t.member.post(
        "/v1/containers", json={"image": IMAGE, "name": "vee", "runtime": "runc"}
    )
    assert v1.status_code == 403, v1.text
    assert "spec.runtime" in v1.json()["errors"][0]["detail"]
    assert await t.stored("applications") == [] and await t.stored("containers") == []


@pytest.mark.timeout(120)
async def test_negative_and_nan_quantities_are_refused_on_rest_and_v1(t: Tenants) -> None:
    nan = b'{"kind": "Container", "metadata": {"name": "n"}, "spec": {"image": "x", '
    nan += b'"resources": {"cpu": NaN}}}'
    r = await t.member.post(
        f"{P}/projects/t/containers", content=nan, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.resources.cpu"
    zero = await t.member.post(f"{P}/projects/t/containers", json=ctr("z", resources={"cpu": 0}))
    assert zero.status_code == 422 and "spec.resources.cpu" in zero.text
    made = await t.member.post("/v1/containers", json={"image": IMAGE, "name": "v1c", "cpu": 1})
    assert made.status_code == 202, made.text
    await t.report("v1c", "Stopped")  # Zun allows updates then
    for bad in (-1000, "NaN"):
        patched = await t.member.patch("/v1/containers/v1c", json={"cpu": bad})
        assert patched.status_code == 400, patched.text
        assert "cpu" in patched.json()["errors"][0]["detail"]
    kv = await t.kv.get("/zun/registry/containers/t/v1c")
    assert kv is not None
    assert Container.model_validate_json(kv.value).spec.resources.cpu == 1
    assert await t.stored("containers") == ["v1c"]


@pytest.mark.timeout(120)
async def test_replicas_are_bounded(t: Tenants) -> None:
    r = await t.member.post(f"{P}/projects/t/applications", json=app("huge", 10**18))
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.replicas"
    ok = await t.member.post(f"{P}/projects/t/applications", json=app("ok", 3))
    assert ok.status_code == 201, ok.text
    grown = await t.member.patch(
        f"{P}/projects/t/applications/ok", json={"spec": {"replicas": 10**6}}, headers=MERGE
    )
    assert grown.status_code == 422
    assert await t.stored("applications") == ["ok"]


@pytest.mark.timeout(120)
async def test_reader_cannot_run_top(t: Tenants) -> None:
    made = await t.admin.post(f"{P}/projects/t/containers", json=ctr("web"))
    assert made.status_code == 201
    uid = made.json()["metadata"]["uid"]
    await t.report("web", "Running")  # so `top` would reach the engine
    top = await t.reader.get(f"/v1/containers/{uid}/top", params={"ps_args": "-ef"})
    assert top.status_code == 403, top.text
    assert (await t.reader.get(f"/v1/containers/{uid}")).status_code == 200
    assert (await t.member.get(f"/v1/containers/{uid}/top")).status_code != 403


@pytest.mark.timeout(120)
async def test_port_policy_loopback_unprivileged_and_not_the_apis_port(t: Tenants) -> None:
    cases = [
        ({"containerPort": 80, "hostIp": "0.0.0.0", "hostPort": 18080}, "hostIp"),
        ({"containerPort": 80, "hostPort": 80}, "hostPort"),
        ({"containerPort": 80, "hostPort": t.api.port}, "hostPort"),
    ]
    for i, (port, field) in enumerate(cases):
        r = await t.member.post(f"{P}/projects/t/containers", json=ctr(f"p{i}", ports=[port]))
        assert r.status_code == 422, r.text
        assert r.json()["details"]["causes"][0]["field"] == f"spec.ports[0].{field}"
    ok = await t.member.post(
        f"{P}/projects/t/containers",
        json=ctr("ok", ports=[{"containerPort": 80, "hostPort": 18080}]),
    )
    assert ok.status_code == 201, ok.text
    assert await t.stored("containers") == ["ok"]


@pytest.mark.timeout(120)
async def test_owner_references_across_projects_are_refused(t: Tenants) -> None:
    theirs = await t.admin.post(f"{P}/projects/victim/applications", json=app("prod"))
    assert theirs.status_code == 201
    ref = {"kind": "Application", "name": "prod", "uid": theirs.json()["metadata"]["uid"]}
    body = ctr("squat")
    body["metadata"]["ownerReferences"] = [ref]
    r = await t.member.post(f"{P}/projects/t/containers", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "metadata.ownerReferences[0]"
    assert await t.stored("containers") == []


@pytest.mark.timeout(120)
async def test_networks_gitrepositories_and_events_are_limited(t: Tenants) -> None:
    limits = {"networks": 1, "gitrepositories": 1}
    quota = {"kind": "Quota", "metadata": {"name": "t"}, "spec": {"limits": limits}}
    assert (await t.admin.post(f"{P}/quotas", json=quota)).status_code == 201
    for plural, kind, spec in (
        ("networks", "Network", {}),
        ("gitrepositories", "GitRepository", {"url": "https://example.invalid/r.git"}),
    ):
        codes = [
            (
                await t.member.post(
                    f"{P}/projects/t/{plural}",
                    json={"kind": kind, "metadata": {"name": f"x{i}"}, "spec": spec},
                )
            ).status_code
            for i in range(3)
        ]
        assert codes == [201, 403, 403], plural
        assert await t.stored(plural) == ["x0"]
    now = "2026-12-03T00:00:00Z"
    event_spec: dict[str, Any] = {
        "involvedObject": {"kind": "Container", "name": "x"},
        "reason": "Spam",
        "firstTimestamp": now,
        "lastTimestamp": now,
    }
    codes = [
        (
            await t.member.post(
                f"{P}/projects/t/events",
                json={"kind": "Event", "metadata": {"name": f"e{i}"}, "spec": event_spec},
            )
        ).status_code
        for i in range(80)
    ]
    assert 403 in codes and codes.count(201) < 80
    mine = [n for n in await t.stored("events") if n[:1] == "e" and n[1:].isdigit()]
    assert len(mine) == codes.count(201)
    leased = etcdctl(t.etcd, "get", "/zun/registry/events/t/e0", "--write-out=json")
    assert json.loads(leased)["kvs"][0].get("lease"), "an Event written by a member has no lease"


@pytest.mark.timeout(120)
async def test_cluster_allowed_projects(t: Tenants) -> None:
    cluster = {"kind": "Cluster", "metadata": {"name": "c"},
               "spec": {"type": "docker", "allowedProjects": ["ops"]}}  # fmt: skip
    assert (await t.admin.post(f"{P}/clusters", json=cluster)).status_code == 201
    r = await t.member.post(f"{P}/projects/t/applications", json=app("a"))
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.cluster"
    assert await t.stored("applications") == []


def etcdctl(etcd: EtcdServer, *args: str) -> str:
    cmd = ["etcdctl", f"--endpoints={etcd.url}", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30).stdout


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin"}  # fmt: skip


def git_repo(path: Path, docs: list[dict[str, Any]]) -> None:
    path.mkdir()
    (path / "all.yaml").write_text(yaml.safe_dump_all(docs))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(["git", *args], cwd=path, env=GIT_ENV, check=True, capture_output=True)


@pytest.mark.timeout(180)
async def test_gitops_writes_as_a_member_respecting_runtime_and_quota(
    own_etcd: EtcdServer, tmp_path: Path
) -> None:
    zun = ZunBed(own_etcd, tmp_path, ("g",))
    try:
        await zun.apply("Quota", "g", {"limits": {"containers": 1}})
        docs = [
            {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
             "metadata": {"name": name}, "spec": {"image": IMAGE, **extra}}
            for name, extra in (("a", {}), ("b", {}), ("sandbox-off", {"runtime": "runc"}))
        ]  # fmt: skip
        git_repo(tmp_path / "repo", docs)
        spec = {"url": f"file://{tmp_path / 'repo'}", "intervalSeconds": 2}
        await zun.apply("GitRepository", "site", spec, project="g")
        zun.start()

        async def refused() -> str | None:
            cond = (await zun.store.get(GitRepository, "site", "g")).status.condition("Ready")
            return cond.message if cond and cond.reason == "Refused" else None

        message = await zun.until(refused, 90, "GitRepository condition Refused")
        assert "exceeded quota" in message and "spec.runtime" in message
        names = [c.name for c in (await zun.store.list(Container, "g")).items]
        assert names == ["a"], names
    finally:
        await zun.close()


CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path / "kube")
    try:
        plane.kubectl_run("apply", "-f", str(CRDS))
        plane.kubectl_run("wait", "--for=condition=Established", "crd", "--all", timeout=60)
        yield plane
    finally:
        plane.stop()


def custom_resource(name: str, namespace: str, **spec: Any) -> str:
    meta = {"name": name, "namespace": namespace}
    body = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container", "metadata": meta,
            "spec": {"image": IMAGE, **spec}}  # fmt: skip
    return json.dumps(body)


@pytest.mark.timeout(300)
async def test_bridge_writes_as_a_member_of_the_namespaces_project(
    own_etcd: EtcdServer, tmp_path: Path, kube: KubeControlPlane
) -> None:
    ns = "kb"
    kube.kubectl_run("create", "namespace", ns)
    zun = ZunBed(own_etcd, tmp_path, (ns,))  # only its store: no controller runs
    bridge = Process(tmp_path, "bridge")
    try:
        await zun.apply("Quota", ns, {"limits": {"containers": 1}})
        cmd = [ZUN, "bridge", "--etcd", own_etcd.url, "--kubeconfig", str(kube.kubeconfig)]
        bridge.launch([*cmd, "--health-port", "0"])
        for name, extra in (("a", {}), ("b", {}), ("sandbox-off", {"runtime": "runc"})):
            manifest = custom_resource(name, ns, **extra)
            kube.kubectl_run("apply", "-f", "-", input_text=manifest)
            if name == "a":
                await zun.until(lambda: zun.store.list(Container, ns), 90, "first record")

        def refusal(name: str) -> str | None:
            got = kube.kubectl_run("get", "container", name, "-n", ns, "-o", "json", check=False)
            conds = json.loads(got.stdout).get("status", {}).get("conditions", [])
            return next((c["message"] for c in conds if c.get("reason") == "Refused"), None)

        assert "exceeded quota" in await zun.until(lambda: refusal("b"), 90, "b refused")
        assert "spec.runtime" in await zun.until(lambda: refusal("sandbox-off"), 90, "runtime")
        assert [c.name for c in (await zun.store.list(Container, ns)).items] == ["a"]
    finally:
        bridge.stop()
        await zun.close()
