"""Images from registries end to end: a `zun-controller run` process pulls from real registries
on loopback (one plain, one TLS with basic auth; testbed/registry.py) onto the machine's Docker
engine, and the tests look at the engine, its pull events, HTTP and the records.

Every image is a copy of a zun-test image pushed under a random repository and removed locally
after the push, so the controller really pulls it; the zun-test tags are never removed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import httpx
import pytest
from testbed.docker import HTTPD_V1, HTTPD_V2, MAIN_SOCKET_URL, ensure_dockerd, ensure_test_images
from testbed.docker import wait_http as wait_http_sync
from testbed.registry import Registry, start_registry, stop_registry
from zun_bed import ZunBed, clean_engine

from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_UID
from zun_controller.models.container import Container
from zun_controller.models.event import Event
from zun_controller.models.pullsecret import PullSecret
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
RUN = secrets.token_hex(4)
USER, PASSWORD = "alice", f"Pw-{RUN}-ok"


@pytest.fixture(scope="module")
def api() -> Iterator[Any]:
    url = ensure_dockerd()
    ensure_test_images(url)
    client = docker.APIClient(base_url=url, version="auto")
    yield client
    client.close()


@pytest.fixture(scope="module")
def plain(api: Any) -> Iterator[Registry]:
    registry = start_registry(f"e2e-{RUN}")
    yield registry
    stop_registry(registry, api)


@pytest.fixture(scope="module")
def private(api: Any) -> Iterator[Registry]:
    registry = start_registry(f"e2es-{RUN}", tls=True, user=USER, password=PASSWORD)
    yield registry
    stop_registry(registry, api)


@pytest.fixture
def project() -> str:
    return f"reg{secrets.token_hex(3)}"


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, api: Any, project: str
) -> AsyncIterator[ZunBed]:
    bed = ZunBed(own_etcd, tmp_path, (project,))
    await bed.host("local", MAIN_SOCKET_URL)
    bed.start()
    yield bed
    await bed.close()
    clean_engine(docker.DockerClient(base_url=MAIN_SOCKET_URL, version="auto"), (project,))


def repository() -> str:
    return f"zun-test-{secrets.token_hex(4)}/httpd"


def docker_config(host: str, password: str) -> str:
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"auth": auth}}})


def ours(api: Any, obj: Container) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.containers(
        all=True, filters={"label": f"{LABEL_UID}={obj.metadata.uid}"}
    )
    return found


async def reason(zun: ZunBed, name: str, project: str, *reasons: str) -> Container:
    async def reached() -> Container | None:
        obj = await zun.container(name, project)
        cond = obj.status.condition("Ready")
        return obj if cond is not None and cond.reason in reasons else None

    return await zun.until(reached, 90, f"{name} Ready reason in {reasons}")  # type: ignore[no-any-return]


async def served(zun: ZunBed, name: str, project: str) -> str:
    obj = await zun.phase(name, project, "Running", within=120)
    port = next(p.host_port for p in obj.status.ports if p.container_port == 8080)
    return wait_http_sync(f"http://127.0.0.1:{port}/").text


async def event_reasons(zun: ZunBed, project: str, name: str) -> set[str]:
    events = (await zun.store.list(Event, project=project)).items
    return {e.spec.reason for e in events if e.spec.involved_object.name == name}


WEB = {"ports": [{"containerPort": 8080}]}


@pytest.mark.timeout(240)
async def test_a_public_image_is_pulled_once_and_runs_by_digest(
    zun: ZunBed, api: Any, plain: Registry, project: str
) -> None:
    repo = repository()
    digest = plain.push(api, HTTPD_V1, repo, "v1")
    image = plain.ref(repo, "v1")
    assert not api.images(name=image), "the pushed tag must be absent so it is really pulled"
    await zun.apply("Container", "web", {"image": image, **WEB}, project=project)
    assert "zun-test httpd v1" in await served(zun, "web", project)
    obj = await zun.container("web", project)
    assert obj.status.image_id == f"{plain.host}/{repo}@{digest}"
    assert plain.pulls(repo, "v1") == 1

    async def recorded() -> bool:
        return {"Pulling", "Pulled"} <= await event_reasons(zun, project, "web")

    await zun.until(recorded, 60, "Pulling and Pulled events")


@pytest.mark.timeout(300)
async def test_a_wrong_password_backs_off_and_a_corrected_secret_runs(
    zun: ZunBed, api: Any, private: Registry, project: str
) -> None:
    repo = repository()
    private.push(api, HTTPD_V1, repo, "v1")
    image = private.ref(repo, "v1")
    wrong = f"wrong-{RUN}"
    data = {".dockerconfigjson": docker_config(private.host, wrong)}
    await zun.apply("PullSecret", "registry", {"data": data}, project=project)
    spec = {"image": image, "imagePullSecrets": [{"name": "registry"}], **WEB}
    await zun.apply("Container", "app", spec, project=project)
    obj = await reason(zun, "app", project, "ErrImagePull")
    cond = obj.status.condition("Ready")
    assert cond is not None and "unauthorized" in cond.message, cond
    assert obj.status.phase == "Error"
    backing = await reason(zun, "app", project, "ImagePullBackOff")
    cond = backing.status.condition("Ready")
    assert cond is not None and "next retry at" in cond.message and "unauthorized" in cond.message
    assert ours(api, obj) == [], "nothing is created while the pull fails: no crash loop"
    assert zun.proc is not None and zun.proc.poll() is None
    secret = await zun.store.get(PullSecret, "registry", project)
    secret.spec.data[".dockerconfigjson"] = docker_config(private.host, PASSWORD)
    await zun.store.update(secret)  # the Container is not touched
    assert "zun-test httpd v1" in await served(zun, "app", project)
    assert (await zun.container("app", project)).metadata.generation == obj.metadata.generation
    events = (await zun.store.list(Event, project=project)).items
    shown = json.dumps([e.to_wire() for e in events]) + zun.log_tail()
    shown += json.dumps((await zun.container("app", project)).to_wire()["status"])
    assert PASSWORD not in shown and wrong not in shown


@pytest.mark.timeout(180)
async def test_never_with_the_image_absent_says_so(
    zun: ZunBed, api: Any, plain: Registry, project: str
) -> None:
    repo = repository()
    plain.push(api, HTTPD_V1, repo, "v1")
    image = plain.ref(repo, "v1")
    await zun.apply(
        "Container", "web", {"image": image, "imagePullPolicy": "Never"}, project=project
    )
    obj = await reason(zun, "web", project, "ErrImageNeverPull")
    cond = obj.status.condition("Ready")
    assert cond is not None and "not present" in cond.message and "Never" in cond.message
    assert obj.status.phase == "Error"
    assert plain.pulls(repo, "v1") == 0


@pytest.mark.timeout(300)
async def test_always_pulls_a_moved_tag_again_and_the_image_id_changes(
    zun: ZunBed, api: Any, plain: Registry, project: str
) -> None:
    repo = repository()
    first = plain.push(api, HTTPD_V1, repo, "moving")
    image = plain.ref(repo, "moving")
    spec = {"image": image, "imagePullPolicy": "Always", **WEB}
    await zun.apply("Container", "web", spec, project=project)
    assert "zun-test httpd v1" in await served(zun, "web", project)
    assert (await zun.container("web", project)).status.image_id == f"{plain.host}/{repo}@{first}"
    second = plain.push(api, HTTPD_V2, repo, "moving")
    await zun.edit("web", project, rebuilt_at=datetime.now(UTC))

    async def moved() -> bool:
        obj = await zun.container("web", project)
        return obj.status.image_id == f"{plain.host}/{repo}@{second}" and (
            obj.status.phase == "Running"
        )

    await zun.until(moved, 120, "status.imageID names the moved tag's digest")
    assert "zun-test httpd v2" in await served(zun, "web", project)


@pytest.mark.timeout(240)
async def test_a_digest_reference_runs_exactly_that_digest(
    zun: ZunBed, api: Any, plain: Registry, project: str
) -> None:
    repo = repository()
    first = plain.push(api, HTTPD_V1, repo, "t")
    plain.push(api, HTTPD_V2, repo, "t")  # the tag moves on; the digest names v1
    image = f"{plain.host}/{repo}@{first}"
    await zun.apply("Container", "web", {"image": image, **WEB}, project=project)
    assert "zun-test httpd v1" in await served(zun, "web", project)
    assert (await zun.container("web", project)).status.image_id == image


@pytest.mark.timeout(420)
async def test_twenty_concurrent_containers_of_one_image_make_one_pull(
    zun: ZunBed, api: Any, plain: Registry, project: str
) -> None:
    repo = repository()
    plain.push(api, HTTPD_V1, repo, "v1")
    image = plain.ref(repo, "v1")
    for i in range(20):
        await zun.apply("Container", f"web-{i}", {"image": image}, project=project)
    for i in range(20):
        await zun.phase(f"web-{i}", project, "Running", within=240)
    assert plain.pulls(repo, "v1") == 1


class Probe:
    """GETs through the balancer on fresh connections, bounded in count and time."""

    def __init__(self, endpoint: str, *, limit: int = 4000, seconds: float = 200.0) -> None:
        self.url, self.limit, self.seconds = f"http://{endpoint}/", limit, seconds
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        deadline = time.monotonic() + self.seconds
        async with httpx.AsyncClient(timeout=5, limits=limits) as http:
            for _ in range(self.limit):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    resp = await http.get(self.url)
                    if resp.status_code != 200:
                        self.failures.append(f"HTTP {resp.status_code}")
                    else:
                        self.answers[resp.text.split(" host=")[0]] += 1
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                await asyncio.sleep(0.02)

    def start(self) -> Probe:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


@pytest.mark.timeout(420)
async def test_a_docker_cluster_rollout_to_an_unpullable_image_keeps_every_replica_serving(
    zun: ZunBed, api: Any, plain: Registry, project: str
) -> None:
    """maxUnavailable 1 lets the rollout take one old replica out at once, so only the pull
    gate keeps every old replica while the new image cannot be pulled."""
    repo = repository()
    plain.push(api, HTTPD_V1, repo, "v1")
    await zun.apply("Cluster", "dk", {"type": "docker"})
    spec: dict[str, Any] = {
        "cluster": "dk",
        "replicas": 4,
        "template": {"containers": [{"name": "httpd", "image": plain.ref(repo, "v1")}]},
        "service": {"ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
        "updateStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1},
            "progressDeadlineSeconds": 60,
        },
    }
    await zun.apply("Application", "web", spec, project=project)

    async def settled() -> Application | None:
        obj = await zun.store.get(Application, "web", project)
        ok = obj.status.phase == "Ready" and obj.status.ready_replicas == 4
        return obj if ok and obj.status.endpoints else None

    obj: Application = await zun.until(settled, 180, "4 replicas ready")
    good = obj.status.current_revision
    before = {(c.name, c.status.container_id) for c in await replicas_of(zun, project)}
    probe = Probe(obj.status.endpoints[0]).start()
    obj.spec.template.containers[0].image = plain.ref(repo, "missing")
    await zun.store.update(obj)

    async def rolled_back() -> Application | None:
        o = await zun.store.get(Application, "web", project)
        ok = o.status.failed_revision is not None and o.status.is_true("RolledBack")
        return o if ok and o.status.phase == "Ready" else None

    obj = await zun.until(rolled_back, 180, "rolled back")
    await asyncio.sleep(1)
    await probe.stop()
    assert obj.status.current_revision == good
    assert probe.failures == [], probe.failures[:5]
    assert set(probe.answers) == {"zun-test httpd v1"} and sum(probe.answers.values()) >= 10
    after = await replicas_of(zun, project)
    kept = {(c.name, c.status.container_id) for c in after if c.metadata.labels[REVISION] == good}
    assert kept == before, "an old replica was drained or replaced"
    drained = [c.name for c in after if DRAIN in c.metadata.annotations]
    assert all(not n.startswith(f"web-{good}-") for n in drained), drained


REVISION, DRAIN = "zun.openstack.org/revision", "zun.openstack.org/draining-since"


async def replicas_of(zun: ZunBed, project: str) -> list[Container]:
    listed = (await zun.store.list(Container, project)).items
    return [c for c in listed if c.metadata.labels.get("zun.openstack.org/role") == "replica"]


def _ensure_swarm(api: Any) -> None:
    """The main engine as a single-node Swarm manager (as the Swarm e2e leaves it)."""
    if api.info()["Swarm"]["LocalNodeState"] != "active":
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip


@pytest.mark.timeout(420)
async def test_a_swarm_service_pulls_a_private_image_with_the_pull_secret(
    zun: ZunBed, api: Any, private: Registry, project: str
) -> None:
    _ensure_swarm(api)
    repo = repository()
    private.push(api, HTTPD_V1, repo, "v1")
    image = private.ref(repo, "v1")
    data = {".dockerconfigjson": docker_config(private.host, PASSWORD)}
    await zun.apply("PullSecret", "registry", {"data": data}, project=project)
    await zun.apply("Cluster", "sw", {"type": "swarm", "endpoint": MAIN_SOCKET_URL})
    container = {"name": "httpd", "image": image, "imagePullSecrets": [{"name": "registry"}]}
    spec = {
        "cluster": "sw",
        "replicas": 1,
        "template": {"containers": [container]},
        "service": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
    }
    service = f"zun_{project}_web"
    try:
        await zun.apply("Application", "web", spec, project=project)

        async def ready() -> Application | None:
            obj = await zun.store.get(Application, "web", project)
            return obj if obj.status.ready_replicas == 1 and obj.status.endpoints else None

        obj: Application = await zun.until(ready, 180, "the Swarm task runs the private image")
        port = obj.status.endpoints[0].rsplit(":", 1)[1]
        assert "zun-test httpd v1" in wait_http_sync(f"http://127.0.0.1:{port}/").text
        tasks = api.tasks(filters={"service": service, "desired-state": "running"})
        assert {t["Spec"]["ContainerSpec"]["Image"].split("@")[0] for t in tasks} == {image}
        assert PASSWORD not in json.dumps(api.inspect_service(service))
    finally:
        with contextlib.suppress(docker.errors.APIError):
            api.remove_service(service)
        _remove_network(api, f"zun-swarm-{project}")


def _remove_network(api: Any, name: str) -> None:
    """The project network Zun leaves behind (in use until the tasks have ended)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and api.networks(names=[name]):
        with contextlib.suppress(docker.errors.APIError):
            for network in api.networks(names=[name]):
                api.remove_network(network["Id"])
        time.sleep(0.5)
