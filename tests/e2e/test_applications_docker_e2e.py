"""Applications on a `docker` Cluster (Zun's own Containers plus an haproxy balancer) on the
real engine, driven by a `zun-controller run` process and checked through the balancer's
127.0.0.1 port: every replica answers, scaling converges, a rolling upgrade under a steady
probe loses no request, a failing upgrade rolls back by itself, and deletion removes what
the Application made and nothing else."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from testbed.docker import (
    HTTPD_BROKEN,
    HTTPD_V1,
    HTTPD_V2,
    TESTBED_LABELS,
    client,
    extra_engine_with_images,
)
from zun_bed import ZunBed, clean_engine

from zun_controller.models.application import Application
from zun_controller.models.base import LABEL_PROJECT
from zun_controller.models.container import Container
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


#: An engine of this module's own: other test sessions' controllers on the shared main engine
#: sweep every Zun container their stores do not know (measured: a labelled container was
#: removed within 3 s), which would take this module's balancer and replicas away.
ENGINE_NAME = "zunapps"


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    with extra_engine_with_images(ENGINE_NAME) as url:
        yield url


@pytest.fixture(scope="module")
def engine(engine_url: str) -> Iterator[docker.DockerClient]:
    engine = client(engine_url)
    yield engine
    engine.close()


@pytest.fixture
async def zun(
    own_etcd: EtcdServer, tmp_path: Path, engine: docker.DockerClient, engine_url: str
) -> AsyncIterator[ZunBed]:
    project = f"d{secrets.token_hex(3)}"
    bed = ZunBed(own_etcd, tmp_path, (project,))
    await bed.host("apps", engine_url)
    await bed.apply("Cluster", "dk", {"type": "docker"})
    bed.start()
    yield bed
    await bed.close()
    clean_engine(engine, (project,))
    for c in engine.containers.list(
        ignore_removed=True, all=True, sparse=True, filters={"label": f"{LABEL_PROJECT}={project}"}
    ):
        c.remove(force=True)


def _spec(image: str, replicas: int, **extra: Any) -> dict[str, Any]:
    return {
        "cluster": "dk",
        "replicas": replicas,
        "template": {"containers": [{"name": "httpd", "image": image}]},
        "service": {"ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 1},
        "updateStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            "progressDeadlineSeconds": 60,
        },
        **extra,
    }


async def _edit(zun: ZunBed, project: str, **spec: Any) -> None:
    obj = await zun.store.get(Application, "web", project)
    obj.spec = type(obj.spec).model_validate({**obj.spec.model_dump(by_alias=True), **spec})
    await zun.store.update(obj)


async def _replicas(zun: ZunBed, project: str) -> list[Container]:
    listed = await zun.store.list(Container, project)
    return [c for c in listed.items if c.metadata.labels.get("zun.openstack.org/role") == "replica"]


async def _settled(zun: ZunBed, project: str, replicas: int, image: str) -> Application:
    async def check() -> Application | None:
        obj = await zun.store.get(Application, "web", project)
        records = await _replicas(zun, project)
        ok = (
            obj.status.phase == "Ready"
            and obj.status.ready_replicas == replicas
            and len(records) == replicas
            and {c.spec.image for c in records} == {image}
            and bool(obj.status.endpoints)
        )
        return obj if ok else None

    obj: Application = await zun.until(check, 120, f"{replicas} x {image} ready")
    return obj


def _get(endpoint: str) -> str:
    return httpx.get(f"http://{endpoint}/", timeout=3, headers={"Connection": "close"}).text


async def _hosts_answering(endpoint: str, want: set[str], tries: int = 80) -> set[str]:
    seen: set[str] = set()
    for _ in range(tries):
        seen.add(_get(endpoint).strip().rsplit("host=", 1)[1])
        if want <= seen:
            break
        await asyncio.sleep(0.02)
    return seen


async def _all_replicas_answer(zun: ZunBed, project: str, endpoint: str) -> None:
    want = {
        c.status.container_id[:12] for c in await _replicas(zun, project) if c.status.container_id
    }
    assert await _hosts_answering(endpoint, want) == want


@pytest.mark.timeout(400)
async def test_balanced_scaled_and_deleted(zun: ZunBed, engine: docker.DockerClient) -> None:
    project = zun.projects[0]
    bystander = engine.containers.create(
        HTTPD_V1, name=f"bystander-{project}", labels={**TESTBED_LABELS, LABEL_PROJECT: project}
    )
    await zun.apply("Application", "web", _spec(HTTPD_V1, 2), project=project)
    obj = await _settled(zun, project, 2, HTTPD_V1)
    endpoint = obj.status.endpoints[0]
    assert endpoint.startswith("127.0.0.1:")
    await _all_replicas_answer(zun, project, endpoint)
    for n in (5, 1):
        await _edit(zun, project, replicas=n)
        obj = await _settled(zun, project, n, HTTPD_V1)
        await _all_replicas_answer(zun, project, obj.status.endpoints[0])
    await zun.store.delete(Application, "web", project)

    async def gone() -> bool:
        listed = await zun.store.list(Container, project)
        ours = engine.containers.list(
            ignore_removed=True,
            all=True,
            sparse=True,
            filters={"label": f"{LABEL_PROJECT}={project}"},
        )
        return not listed.items and [c.id for c in ours] == [bystander.id]

    await zun.until(gone, 60, "the app's records and containers removed, the bystander kept")


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


@pytest.mark.timeout(500)
async def test_upgrade_without_loss_and_rollbacks(zun: ZunBed) -> None:
    project = zun.projects[0]
    await zun.apply("Application", "web", _spec(HTTPD_V1, 3), project=project)
    obj = await _settled(zun, project, 3, HTTPD_V1)
    endpoint = obj.status.endpoints[0]
    first = obj.status.current_revision

    probe = Probe(endpoint).start()
    await _edit(zun, project, template={"containers": [{"name": "httpd", "image": HTTPD_V2}]})
    obj = await _settled(zun, project, 3, HTTPD_V2)
    await asyncio.sleep(1)
    await probe.stop()
    assert probe.failures == [], probe.failures[:5]
    assert set(probe.answers) == {"zun-test httpd v1", "zun-test httpd v2"}, probe.answers
    assert sum(probe.answers.values()) >= 50, probe.answers
    good = obj.status.current_revision
    assert good != first and obj.status.previous_revision == first

    broken = {"template": {"containers": [{"name": "httpd", "image": HTTPD_BROKEN}]}}
    failing_check = {
        "template": {"containers": [{"name": "httpd", "image": HTTPD_V1}]},
        "healthcheck": {"httpGet": {"port": 8080, "path": "/missing"}, "intervalSeconds": 1},
    }
    failed: set[str | None] = {None}
    for change in (broken, failing_check):
        probe = Probe(endpoint).start()
        await _edit(zun, project, **change)

        async def rolled_back() -> Application | None:
            o = await zun.store.get(Application, "web", project)
            new_failure = o.status.failed_revision not in failed
            ok = new_failure and o.status.is_true("RolledBack") and o.status.phase == "Ready"
            return o if ok else None

        obj = await zun.until(rolled_back, 120, "rolled back")
        await probe.stop()
        cond = obj.status.condition("RolledBack")
        assert cond is not None and cond.reason == "Unhealthy", cond
        assert obj.status.current_revision == good and obj.status.failed_revision is not None
        assert probe.failures == [], probe.failures[:5]
        assert set(probe.answers) == {"zun-test httpd v2"}, probe.answers
        assert sum(probe.answers.values()) >= 10, probe.answers
        failed.add(obj.status.failed_revision)
        obj = await _settled(zun, project, 3, HTTPD_V2)
    assert len(failed) == 3  # two different revisions failed and were rolled back
