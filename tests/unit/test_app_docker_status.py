"""The Docker orchestrator's observation of a rollout: when a revision counts as failed.

The progress deadline counts only time the revision had a working engine: replicas on a Host
that is not Ready do not count, and on a Host that came back they count from its return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from zun_controller.engine.client import Records
from zun_controller.engine.informer import Informer
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application, Cluster
from zun_controller.models.base import ObjectMeta, OwnerReference
from zun_controller.models.container import Container, ContainerSpec
from zun_controller.models.host import Host
from zun_controller.reconcilers import app_docker_status as status_module
from zun_controller.reconcilers.app_docker import DockerOrchestrator
from zun_controller.reconcilers.app_docker_status import (
    LABEL_REVISION,
    LABEL_ROLE,
    EngineSince,
    observation,
)
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

DEADLINE = 300
NOW = datetime.now(UTC)  # the clock of every test here (see _clock)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The observation's clock reads NOW: ages below are relative to it, however long after
    collection a test runs."""
    monkeypatch.setattr(status_module, "now", lambda: NOW)


def _app() -> Application:
    return Application.model_validate(
        {
            "metadata": {"name": "web", "project": "p"},
            "spec": {
                "cluster": "c1",
                "replicas": 1,
                "template": {"containers": [{"name": "web", "image": "zun-test/httpd:v2"}]},
                "updateStrategy": {"progressDeadlineSeconds": DEADLINE},
            },
        }
    )


def _replica(age: float, host: str | None = "h1", reason: str = "Starting") -> Container:
    meta = ObjectMeta(
        name="web-r2-0",
        project="p",
        labels={LABEL_REVISION: "r2", LABEL_ROLE: "replica"},
        creation_timestamp=NOW - timedelta(seconds=age),
    )
    obj = Container(metadata=meta, spec=ContainerSpec(image="zun-test/httpd:v2"))
    obj.status.host = host
    obj.status.set_condition("Ready", False, reason, "not ready yet")
    return obj


def _engine(up: dict[str, float | None]) -> EngineSince:
    """Host name -> seconds since its engine became Ready (None: not Ready)."""

    def since(name: str) -> datetime | None:
        age = up.get(name)
        return None if age is None else NOW - timedelta(seconds=age)

    return since


def test_a_replica_not_ready_past_the_deadline_on_a_working_engine_fails_the_revision() -> None:
    seen = observation(_app(), [_replica(DEADLINE + 60)], "r2", _engine({"h1": 3600}))
    assert seen.failed is not None and seen.failed.startswith("ProgressDeadlineExceeded")


def test_within_the_deadline_the_revision_is_still_progressing() -> None:
    seen = observation(_app(), [_replica(DEADLINE - 60)], "r2", _engine({"h1": 3600}))
    assert seen.failed is None and seen.progressing


def test_time_while_the_engine_is_down_does_not_count_against_the_revision() -> None:
    seen = observation(_app(), [_replica(DEADLINE + 600)], "r2", _engine({"h1": None}))
    assert seen.failed is None and seen.progressing


def test_after_the_engine_comes_back_the_deadline_counts_from_its_return() -> None:
    old = _replica(DEADLINE + 600)
    assert observation(_app(), [old], "r2", _engine({"h1": 60})).failed is None
    late = observation(_app(), [old], "r2", _engine({"h1": DEADLINE + 30})).failed
    assert late is not None and late.startswith("ProgressDeadlineExceeded")


def test_a_replica_not_yet_placed_counts_from_its_creation() -> None:
    seen = observation(_app(), [_replica(DEADLINE + 60, host=None)], "r2", _engine({}))
    assert seen.failed is not None and seen.failed.startswith("ProgressDeadlineExceeded")


def test_a_replica_failing_for_its_revision_fails_it_at_once_whatever_the_engine() -> None:
    seen = observation(_app(), [_replica(5, reason="ImageNotFound")], "r2", _engine({"h1": 1}))
    assert seen.failed is not None and seen.failed.startswith("Unhealthy")


async def _until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_the_docker_orchestrator_asks_each_replicas_host_when_its_engine_came_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the orchestrator and its caches, with the clock moved on past the deadline: a
    Host not Ready holds the deadline; once Ready again it runs from the Host's return."""
    store = RecordStore(MemoryKV())
    host = await store.create(
        Host.model_validate({"metadata": {"name": "h1"}, "spec": {"endpoint": "unix:///x.sock"}})
    )
    host.status.set_condition("Ready", False, "Unreachable", "engine restarting")
    host = await store.update_status(host)
    app = await store.create(_app())
    assert app.metadata.uid is not None
    replica = _replica(0)
    replica.metadata.owner_references = [
        OwnerReference(kind="Application", name=app.name, uid=app.metadata.uid)
    ]
    created = await store.create(replica)  # stamped now
    created.status = replica.status  # placed on h1, not Ready
    await store.update_status(created)

    metrics = Metrics()
    hosts, containers = (
        Informer(store, Host, metrics=metrics),
        Informer(store, Container, metrics=metrics),
    )
    tasks = [asyncio.create_task(i.run()) for i in (hosts, containers)]
    try:
        await _until(lambda: hosts.synced.is_set() and containers.synced.is_set())
        cluster = Cluster.model_validate({"metadata": {"name": "c1"}, "spec": {"type": "docker"}})
        pool: Any = None  # observing reads records only
        orch = DockerOrchestrator(cluster, Records(store, containers), Records(store, hosts), pool)
        later = datetime.now(UTC) + timedelta(seconds=DEADLINE + 600)
        monkeypatch.setattr(status_module, "now", lambda: later)
        assert (await orch.observe(app, "r2")).failed is None  # the engine was down all along

        host.status.set_condition("Ready", True, "Reachable", "", now=later - timedelta(seconds=60))
        await store.update_status(host)
        await _until(lambda: _ready(hosts.get_by_name("h1")))
        assert (await orch.observe(app, "r2")).failed is None  # back for 60 s only

        monkeypatch.setattr(status_module, "now", lambda: later + timedelta(seconds=DEADLINE))
        failed = (await orch.observe(app, "r2")).failed
        assert failed is not None and failed.startswith("ProgressDeadlineExceeded")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _ready(host: Host | None) -> bool:
    return host is not None and host.status.is_true("Ready")


def _ready_replica(name: str, host: str) -> Container:
    obj = _replica(5, host=host)
    obj.metadata.name = name
    obj.status.set_condition("Ready", True, "Healthy")
    return obj


def _balancer(host: str) -> Container:
    meta = ObjectMeta(name="web-lb", project="p", labels={LABEL_ROLE: "lb"})
    obj = Container(metadata=meta, spec=ContainerSpec(image="zun-test/haproxy:2.6"))
    obj.status.host, obj.status.container_id = host, "lb-id"
    return obj


def test_the_endpoints_serve_once_the_balancer_was_given_every_ready_replica_on_its_host() -> None:
    """What a move between Clusters waits for before the cut over (app_migrator)."""
    cluster = Cluster.model_validate({"metadata": {"name": "c1"}, "spec": {"type": "docker"}})
    unused: Any = object()  # observing reads what it is given and what it pushed only
    orch = DockerOrchestrator(cluster, unused, unused, unused, admission=unused)
    lb, here, there = _balancer("h1"), _ready_replica("web-r2-0", "h1"), _ready_replica("x", "h2")

    def serving() -> bool:
        owned = [lb, here, there]
        return observation(_app(), owned, "r2", _engine({"h1": 60}), orch._balanced).serving

    assert not serving()  # nothing pushed yet: haproxy answers nobody
    orch._pushed["lb-id"] = "backend b80\n    server x 10.0.0.9:8080\n"
    assert not serving()  # the replica on its host is not a backend yet
    orch._pushed["lb-id"] = "backend b80\n    server web-r2-0 10.0.0.8:8080\n"
    assert serving()  # replicas on other hosts get no traffic, so are not waited for
    assert observation(_app(), [here], "r2", _engine({"h1": 60}), orch._balanced).serving
