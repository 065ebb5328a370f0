"""The engine-independent Application reconciler and the Cluster reconciler, on the in-memory
store with a fake orchestrator: revisions, automatic rollback, status, deletion."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from zun_controller.drivers.orchestrators.base import AppObservation, ClusterInfo, OwnedApp
from zun_controller.engine.manager import Manager
from zun_controller.errors import NotFoundError
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application, AppTemplate, Cluster
from zun_controller.models.deletion import ORPHAN
from zun_controller.models.event import Event
from zun_controller.models.registry import parse
from zun_controller.reconcilers import orchestrators
from zun_controller.reconcilers.app_setup import ApplicationControllers
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

V1, V2, BROKEN = "zun-test/httpd:v1", "zun-test/httpd:v2", "zun-test/httpd:broken"


@dataclass
class Running:
    revision: str
    image: str
    replicas: int


@dataclass
class FakeOrchestrator:
    """An engine in memory: apps run at once unless their image is in `failing`."""

    failing: set[str] = field(default_factory=lambda: {BROKEN})
    apps: dict[str, Running] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)

    async def info(self) -> ClusterInfo:
        return ClusterInfo(version="fake-1", nodes=2, cpus=4.0, memory=2**30)

    async def apply(self, app: Application, template: AppTemplate, revision: str) -> bool:
        self.applied.append(revision)
        running = Running(revision, template.containers[0].image, app.spec.replicas)
        changed = self.apps.get(app.key) != running
        self.apps[app.key] = running
        return changed

    async def observe(self, app: Application, revision: str) -> AppObservation:
        run = self.apps.get(app.key)
        if run is None:
            return AppObservation(exists=False)
        bad = run.image in self.failing
        n = run.replicas
        return AppObservation(
            exists=True,
            replicas=n,
            ready=0 if bad else n,
            updated=n,
            available=0 if bad else n,
            revision=run.revision,
            endpoints=("127.0.0.1:30080",),
            failed="Unhealthy: new replicas fail their healthcheck" if bad else None,
        )

    async def delete(self, app: Application) -> bool:
        self.apps.pop(app.key, None)
        return True

    async def list_owned(self) -> list[OwnedApp]:
        return []

    async def close(self) -> None:
        return None


class Bed:
    def __init__(self) -> None:
        self.store = RecordStore(MemoryKV())
        self.engine = FakeOrchestrator()
        self.manager = Manager(metrics=Metrics(), health_port=None)
        self.ctl = ApplicationControllers(
            self.manager, self.store, self.manager.metrics, docker=lambda c: self.engine
        )

    async def apply(self, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> Any:
        doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind}
        return await self.store.create(
            parse({**doc, "metadata": {"name": name, **meta}, "spec": spec})
        )

    async def app(self, image: str = V1, **spec: Any) -> Application:
        body = {"cluster": "c1", "replicas": 3, "template": _template(image), **spec}
        obj = await self.apply("Application", "web", body, project="demo")
        assert isinstance(obj, Application)
        return obj

    def get(self) -> Application:
        obj = self.ctl.apps.get_by_name("web", "demo")
        if obj is None:
            raise LookupError("applications/demo/web is not in the cache (yet)")
        return obj

    async def edit(self, **spec: Any) -> None:
        obj = await self.store.get(Application, "web", "demo")
        obj.spec = type(obj.spec).model_validate({**obj.spec.model_dump(by_alias=True), **spec})
        await self.store.update(obj)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.manager.metrics.registry.get_sample_value(name, labels)

    async def events(self) -> list[Event]:
        await self.ctl.recorder.flush()
        return list((await self.store.list(Event, project="demo")).items)

    async def until(self, check: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not _holds(check):  # noqa: ASYNC110 - the reconcilers have no hook to await
                await asyncio.sleep(0.01)


def _holds(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except LookupError:
        return False


def _template(image: str) -> dict[str, Any]:
    return {"containers": [{"name": "httpd", "image": image}]}


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    b = Bed()
    stop = asyncio.Event()
    task = asyncio.create_task(b.manager.run(stop))
    await b.apply("Cluster", "c1", {"type": "docker"})
    yield b
    stop.set()
    await asyncio.wait_for(task, 10)


def _cond(obj: Any, type_: str) -> tuple[str, str]:
    cond = obj.status.condition(type_)
    assert cond is not None, f"no condition {type_}: {obj.status}"
    return cond.status.value, cond.reason


async def test_app_runs_and_reports_status(bed: Bed) -> None:
    await bed.app()
    await bed.until(lambda: bed.get().status.phase == "Ready")
    status = bed.get().status
    assert bed.engine.apps["applications/demo/web"].replicas == 3
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3)
    assert status.current_revision == bed.engine.apps["applications/demo/web"].revision
    assert status.previous_revision is None
    assert [r.name for r in status.history] == [status.current_revision]
    assert status.endpoints == ["127.0.0.1:30080"]
    assert status.observed_generation == 1
    assert _cond(bed.get(), "Available") == ("True", "MinimumReplicasAvailable")
    assert _cond(bed.get(), "Progressing") == ("True", "RevisionAvailable")
    assert _cond(bed.get(), "RolledBack") == ("False", "NoFailedRevision")
    cluster = bed.ctl.clusters.get_by_name("c1")
    assert cluster is not None and cluster.status.nodes == 2 and cluster.status.reachable


async def test_orchestrator_calls_and_convergence_are_measured(bed: Bed) -> None:
    await bed.app()
    await bed.until(lambda: bed.get().status.phase == "Ready")
    await bed.until(lambda: bed.sample("zun_convergence_seconds_count", kind="Application") == 1)
    calls = {"engine": "docker", "operation": "apply", "result": "success"}
    assert (bed.sample("zun_driver_calls_total", **calls) or 0) >= 1
    assert bed.sample("zun_driver_calls_total", **{**calls, "result": "error"}) == 0
    assert (bed.sample("zun_driver_calls_total", **{**calls, "operation": "info"}) or 0) >= 1
    assert (
        bed.sample("zun_driver_call_seconds_count", engine="docker", operation="observe") or 0
    ) >= 1
    for engine in ("swarm", "kubernetes"):  # every engine's series exist before its first call
        assert bed.sample("zun_driver_calls_total", **{**calls, "engine": engine}) == 0
    await bed.edit(template=_template(V2))
    await bed.until(lambda: bed.sample("zun_convergence_seconds_count", kind="Application") == 2)
    assert bed.get().status.phase == "Ready"


async def test_scaling_is_no_new_revision_but_healthcheck_is(bed: Bed) -> None:
    await bed.app()
    await bed.until(lambda: bed.get().status.phase == "Ready")
    first = bed.get().status.current_revision
    await bed.edit(replicas=5)
    await bed.until(lambda: bed.get().status.replicas == 5)
    assert bed.get().status.current_revision == first
    await bed.edit(healthcheck={"httpGet": {"port": 8080, "path": "/healthz"}})
    await bed.until(lambda: bed.get().status.current_revision != first)
    status = bed.get().status
    assert status.previous_revision == first
    running = next(r for r in status.history if r.name == status.current_revision)
    hc = running.template.containers[0].healthcheck
    assert hc is not None and hc.http_get is not None and hc.http_get.path == "/healthz"


async def test_failed_upgrade_rolls_back_and_stays_back_until_template_changes(bed: Bed) -> None:
    await bed.app()
    await bed.until(lambda: bed.get().status.phase == "Ready")
    good = bed.get().status.current_revision
    await bed.edit(template=_template(BROKEN))
    await bed.until(lambda: bed.get().status.failed_revision is not None)
    await bed.until(lambda: bed.get().status.phase == "Ready")
    status = bed.get().status
    broken = status.failed_revision
    assert broken is not None and good is not None
    assert status.current_revision == good and status.previous_revision == broken
    assert bed.engine.apps["applications/demo/web"].revision == good
    assert _cond(bed.get(), "RolledBack") == ("True", "Unhealthy")
    cond = bed.get().status.condition("RolledBack")
    assert cond is not None and broken in cond.message and good in cond.message
    [event] = [e.spec for e in await bed.events() if e.spec.reason == "RolledBack"]
    assert event.type == "Warning" and event.involved_object.name == "web"
    assert event.message == (
        f"revision {broken} failed (Unhealthy: new replicas fail their healthcheck); "
        f"rolled back to revision {good}"
    )
    # while the spec still hashes to the failed revision, it is not tried again
    tries = bed.engine.applied.count(broken)
    await bed.edit(replicas=4)
    await bed.until(lambda: bed.engine.apps["applications/demo/web"].replicas == 4)
    assert bed.engine.applied.count(broken) == tries
    assert bed.engine.apps["applications/demo/web"].revision == good
    # a new template is tried
    await bed.edit(template=_template(V2))
    await bed.until(lambda: bed.engine.apps["applications/demo/web"].image == V2)
    await bed.until(lambda: bed.get().status.phase == "Ready")
    status = bed.get().status
    assert status.failed_revision is None and status.previous_revision == good
    assert _cond(bed.get(), "RolledBack") == ("False", "NoFailedRevision")


async def test_an_engine_changed_by_hand_under_a_settled_app_is_drift(bed: Bed) -> None:
    await bed.app()
    await bed.until(lambda: bed.get().status.phase == "Ready")
    drift = {"kind": "Application", "action": "reapplied"}
    assert bed.sample("zun_drift_corrections_total", **drift) == 0  # the rollout is no drift
    bed.engine.apps["applications/demo/web"].replicas = 1  # e.g. `docker service scale`
    bed.ctl.application.queue.add("applications/demo/web")  # as the periodic poll would
    await bed.until(lambda: bed.sample("zun_drift_corrections_total", **drift) == 1)
    assert bed.engine.apps["applications/demo/web"].replicas == 3
    [event] = [e.spec for e in await bed.events() if e.spec.reason == "DriftCorrected"]
    revision = bed.get().status.current_revision
    assert event.message == f"the engine differed from revision {revision}; applied it again"
    await bed.edit(replicas=4)  # a spec change is applied, not corrected
    await bed.until(lambda: bed.get().status.replicas == 4 and bed.get().status.phase == "Ready")
    assert bed.sample("zun_drift_corrections_total", **drift) == 1


async def test_a_revision_that_rolled_out_is_not_rolled_back_when_it_fails_later(
    bed: Bed,
) -> None:
    await bed.app()
    await bed.until(lambda: bed.get().status.phase == "Ready")
    await bed.edit(template=_template(V2))
    await bed.until(
        lambda: bed.get().status.phase == "Ready" and bed.get().status.previous_revision is not None
    )
    bed.engine.failing.add(V2)  # e.g. its replicas are killed behind Zun's back
    await bed.edit(replicas=4)
    await bed.until(lambda: bed.get().status.phase == "Failed")
    status = bed.get().status
    assert status.failed_revision is None
    assert bed.engine.apps["applications/demo/web"].image == V2
    assert _cond(bed.get(), "Progressing") == ("False", "Unhealthy")


async def test_without_auto_rollback_the_failure_is_reported(bed: Bed) -> None:
    await bed.app(autoRollback=False)
    await bed.until(lambda: bed.get().status.phase == "Ready")
    await bed.edit(template=_template(BROKEN))
    await bed.until(lambda: bed.get().status.phase == "Failed")
    status = bed.get().status
    assert status.failed_revision is None
    assert bed.engine.apps["applications/demo/web"].image == BROKEN
    assert _cond(bed.get(), "Progressing") == ("False", "Unhealthy")
    assert _cond(bed.get(), "Available") == ("False", "MinimumReplicasUnavailable")


async def test_delete_removes_what_the_app_made(bed: Bed) -> None:
    await bed.app()
    await bed.until(lambda: "applications/demo/web" in bed.engine.apps)
    await bed.until(lambda: bool(bed.get().metadata.finalizers))
    await bed.store.delete(Application, "web", "demo")
    await bed.until(lambda: bed.ctl.apps.get_by_name("web", "demo") is None)
    assert bed.engine.apps == {}
    with pytest.raises(NotFoundError):
        await bed.store.get(Application, "web", "demo")


async def test_a_delete_with_orphan_waits_for_the_collector_before_the_orchestrator(
    bed: Bed,
) -> None:
    """No garbage collector runs in this bed: the `orphan` finalizer stays until removed."""
    await bed.app()
    await bed.until(lambda: "applications/demo/web" in bed.engine.apps)
    await bed.until(lambda: bool(bed.get().metadata.finalizers))
    await bed.store.delete(Application, "web", "demo", finalizer=ORPHAN)
    await bed.until(lambda: bed.get().metadata.deletion_timestamp is not None)
    await asyncio.sleep(0.3)
    assert "applications/demo/web" in bed.engine.apps  # not removed while orphaning
    held = await bed.store.get(Application, "web", "demo")
    held.metadata.finalizers = [f for f in held.metadata.finalizers if f != ORPHAN]
    await bed.store.update(held)
    await bed.until(lambda: bed.ctl.apps.get_by_name("web", "demo") is None)
    assert bed.engine.apps == {}


async def test_missing_cluster_is_reported_by_field(bed: Bed) -> None:
    await bed.app(cluster="nowhere")
    await bed.until(lambda: bed.get().status.condition("Progressing") is not None)
    assert _cond(bed.get(), "Progressing") == ("False", "ClusterNotFound")
    cond = bed.get().status.condition("Progressing")
    assert cond is not None and cond.message.startswith("spec.cluster:")
    assert bed.engine.apps == {}


async def test_kubernetes_cluster_without_driver_is_unsupported_and_secret_stays_hidden(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestrators, "KUBERNETES_MODULE", "zun_controller.no_such_module")
    await bed.apply("Cluster", "k1", {"type": "kubernetes", "kubeconfigSecret": {"name": "kc"}})
    secret_text = "apiVersion: v1\nusers: [{user: {token: s3cr3t-t0ken}}]"

    def ready(reason: str) -> bool:
        obj = bed.ctl.clusters.get_by_name("k1")
        return obj is not None and _cond_or_none(obj) == ("False", reason)

    await bed.until(lambda: ready("SecretNotFound"))
    await bed.apply("Secret", "kc", {"data": {"kubeconfig": secret_text}})
    await bed.until(lambda: ready("Unsupported"))
    stored = await bed.store.get(Cluster, "k1")
    assert "s3cr3t" not in stored.model_dump_json()


def _cond_or_none(obj: Cluster) -> tuple[str, str] | None:
    cond = obj.status.condition("Ready")
    return None if cond is None else (cond.status.value, cond.reason)


async def test_unreachable_swarm_is_not_ready(bed: Bed) -> None:
    await bed.apply("Cluster", "s1", {"type": "swarm", "endpoint": "tcp://127.0.0.1:1"})

    def unreachable() -> bool:
        obj = bed.ctl.clusters.get_by_name("s1")
        return obj is not None and _cond_or_none(obj) == ("False", "Unreachable")

    await bed.until(unreachable, within=30)
    obj = bed.ctl.clusters.get_by_name("s1")
    assert obj is not None and not obj.status.reachable
    failed = {"engine": "swarm", "operation": "info", "result": "error"}
    assert (bed.sample("zun_driver_calls_total", **failed) or 0) >= 1
