"""Admission on the in-memory store: every rule refuses with the field named and writes
nothing, defaults fill only new records, quota counts the new kinds, Events are rate-limited
and leased, and children are checked against their owner."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.admission import ADMIN, Admission, AdmissionPolicy, Writer
from zun_controller.admission.events import EventAdmission
from zun_controller.errors import ForbiddenError, InvalidError
from zun_controller.models.application import Application, AppService, Cluster
from zun_controller.models.base import Resource
from zun_controller.models.container import Container, DesiredState
from zun_controller.models.event import Event
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_docker import _owned_by
from zun_controller.reconcilers.app_docker_plan import MAX_CREATES, plan
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

MEMBER = Writer("member of demo")
NOW = "2026-12-03T00:00:00Z"


def ctr(name: str = "web", project: str = "demo", **spec: Any) -> Container:
    obj = record(
        {
            "kind": "Container",
            "metadata": {"name": name, "project": project, **spec.pop("meta", {})},
            "spec": {"image": "x", **spec},
        }
    )
    assert isinstance(obj, Container)
    return obj


def app(name: str = "web", *, replicas: int = 1, cluster: str = "local", **c: Any) -> Application:
    obj = record(
        {
            "kind": "Application",
            "metadata": {"name": name, "project": "demo"},
            "spec": {
                "cluster": cluster,
                "replicas": replicas,
                "template": {"containers": [{"name": "main", "image": "x", **c}]},
            },
        }
    )
    assert isinstance(obj, Application)
    return obj


def record(data: dict[str, Any]) -> Resource:
    return parse({"apiVersion": "zun.openstack.org/v1alpha1", **data})


@pytest.fixture
def store() -> RecordStore:
    return RecordStore(MemoryKV())


async def refused(
    admission: Admission, obj: Resource, writer: Writer = MEMBER
) -> InvalidError | ForbiddenError:
    before = await admission.store.kv.revision()
    with pytest.raises((InvalidError, ForbiddenError)) as caught:
        await admission.create(obj, writer)
    assert await admission.store.kv.revision() == before, "a refusal wrote something"
    assert isinstance(caught.value, InvalidError | ForbiddenError)
    return caught.value


def fields(exc: Exception) -> list[str]:
    assert isinstance(exc, InvalidError), exc
    return [e.path for e in exc.errors]


async def test_runtime_is_admin_only_in_containers_and_templates(store: RecordStore) -> None:
    adm = Admission(store)
    assert "spec.runtime" in str(await refused(adm, ctr(runtime="runc")))
    exc = await refused(adm, app(runtime="runc"))
    assert "spec.template.containers[0].runtime" in str(exc)
    made = await adm.create(app(runtime="runsc"), ADMIN)
    changed = made.model_copy(deep=True)
    changed.spec.replicas = 3  # a member may scale what an admin gave a runtime
    assert (await adm.update(changed, made, MEMBER)).spec.replicas == 3
    other = (await store.get(Application, "web", "demo")).model_copy(deep=True)
    other.spec.template.containers[0].runtime = "runc"
    with pytest.raises(ForbiddenError, match="runtime"):
        await adm.update(other, await store.get(Application, "web", "demo"), MEMBER)
    cleared = other.model_copy(deep=True)
    cleared.spec.template.containers[0].runtime = None  # a re-sent spec without it keeps it
    kept = await adm.update(cleared, await store.get(Application, "web", "demo"), MEMBER)
    assert kept.spec.template.containers[0].runtime == "runsc"


async def test_acts_as_annotation_is_admin_only(store: RecordStore) -> None:
    repo = record(
        {
            "kind": "GitRepository",
            "metadata": {
                "name": "r",
                "project": "demo",
                "annotations": {"zun.openstack.org/acts-as": "admin"},
            },
            "spec": {"url": "https://example.invalid/r.git"},
        }
    )
    assert "acts-as" in str(await refused(Admission(store), repo))
    assert (await Admission(store).create(repo, ADMIN)).metadata.uid


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"cpu": 0}, "spec.resources.cpu"),
        ({"cpu": 5000}, "spec.resources.cpu"),
        ({"memory": 0}, "spec.resources.memory"),
        ({"memory": "9Ti"}, "spec.resources.memory"),
    ],
)
async def test_quantities_are_positive_and_bounded(
    store: RecordStore, resources: dict[str, Any], field: str
) -> None:
    assert fields(await refused(Admission(store), ctr(resources=resources), ADMIN)) == [field]


def test_nan_and_infinite_cpu_do_not_parse() -> None:
    for value in (float("nan"), float("inf"), "nan"):
        with pytest.raises(InvalidError, match=r"spec\.resources\.cpu"):
            ctr(resources={"cpu": value})


async def test_a_cpu_set_unvalidated_is_still_refused(store: RecordStore) -> None:
    """As the Zun v1 PATCH sets it: on the model, without pydantic's validation."""
    adm = Admission(store)
    old = await adm.create(ctr(resources={"cpu": 1}), MEMBER)
    for bad in (-1000.0, float("nan")):
        new = old.model_copy(deep=True)
        new.spec.resources.cpu = bad
        with pytest.raises(InvalidError, match=r"spec\.resources\.cpu"):
            await adm.update(new, old, MEMBER)
    assert (await store.get(Container, "web", "demo")).spec.resources.cpu == 1


async def test_replicas_and_list_sizes_are_bounded(store: RecordStore) -> None:
    adm = Admission(store, AdmissionPolicy(max_replicas=10, max_items=3))
    assert fields(await refused(adm, app(replicas=10**18), ADMIN)) == ["spec.replicas"]
    env = [{"name": f"V{i}", "value": "x"} for i in range(4)]
    assert fields(await refused(adm, ctr(env=env), ADMIN)) == ["spec.env"]
    labels = {f"k{i}": "v" for i in range(4)}
    assert fields(await refused(adm, ctr(meta={"labels": labels}), ADMIN)) == ["metadata.labels"]
    assert (await adm.create(app(replicas=10), MEMBER)).spec.replicas == 10


async def test_port_policy(store: RecordStore) -> None:
    adm = Admission(store, AdmissionPolicy().reserving(7070))
    cases = [
        ({"containerPort": 80, "hostIp": "0.0.0.0"}, "spec.ports[0].hostIp"),
        ({"containerPort": 80, "hostPort": 80}, "spec.ports[0].hostPort"),
        ({"containerPort": 80, "hostPort": 7070}, "spec.ports[0].hostPort"),
    ]
    for port, field in cases:
        assert fields(await refused(adm, ctr(ports=[port]))) == [field]
    ok = await adm.create(ctr(ports=[{"containerPort": 80, "hostPort": 18080}]), MEMBER)
    assert ok.spec.ports[0].host_ip == "127.0.0.1"
    svc = app()
    svc.spec.service = AppService.model_validate(
        {"ports": [{"port": 80, "targetPort": 80, "nodePort": 443}]}
    )
    assert fields(await refused(adm, svc)) == ["spec.service.ports[0].nodePort"]
    wide = Admission(store, AdmissionPolicy(allowed_host_ips=frozenset({"0.0.0.0"})))
    opened = ctr("open", ports=[{"containerPort": 80, "hostIp": "0.0.0.0"}])
    assert (await wide.create(opened, MEMBER)).spec.ports[0].host_ip == "0.0.0.0"


async def test_owner_references_must_name_an_owner_of_this_project(store: RecordStore) -> None:
    adm = Admission(store)
    theirs = await adm.create(app("theirs"), ADMIN)
    other = theirs.model_copy(deep=True)
    other.metadata.project = "other"
    other = await store.create(other)  # an Application of another project
    for ref in (
        {"kind": "Application", "name": "theirs", "uid": other.metadata.uid},
        {"kind": "Application", "name": "gone", "uid": "x"},
        {"kind": "Host", "name": "h", "uid": "x"},
    ):
        exc = await refused(adm, ctr("c", meta={"ownerReferences": [ref]}))
        assert fields(exc) == ["metadata.ownerReferences[0]"]
    ref = {"kind": "Application", "name": "theirs", "uid": theirs.metadata.uid}
    assert (await adm.create(ctr("c", meta={"ownerReferences": [ref]}), MEMBER)).metadata.uid


async def test_cluster_allowed_projects(store: RecordStore) -> None:
    adm = Admission(store)
    cluster = record({"kind": "Cluster", "metadata": {"name": "prod"}, "spec": {"type": "docker"}})
    assert isinstance(cluster, Cluster)
    await store.create(cluster)
    assert (await adm.create(app("a", cluster="prod"), MEMBER)).spec.cluster == "prod"
    limited = await store.get(Cluster, "prod")
    limited.spec.allowed_projects = ["ops"]
    await store.update(limited)
    assert fields(await refused(adm, app("b", cluster="prod"))) == ["spec.cluster"]


async def test_defaults_fill_new_records_in_projects_whose_quota_limits_resources(
    store: RecordStore,
) -> None:
    adm = Admission(store, AdmissionPolicy(default_cpu=0.25, default_memory=2**27))
    before = await adm.create(ctr("before"), MEMBER)
    assert before.spec.resources.cpu is None  # no Quota: nothing to charge, nothing filled
    await adm.create(record({"kind": "Quota", "metadata": {"name": "demo"},
                             "spec": {"limits": {"cpu": 4}}}), ADMIN)  # fmt: skip
    made = await adm.create(ctr("after"), MEMBER)
    assert (made.spec.resources.cpu, made.spec.resources.memory) == (0.25, 2**27)
    stop = before.model_copy(deep=True)
    stop.spec.state = DesiredState.STOPPED
    kept = await adm.update(stop, before, MEMBER)
    assert kept.spec.resources.cpu is None, "an existing container's config must not change"
    resent = made.model_copy(deep=True)
    resent.spec.resources.cpu = resent.spec.resources.memory = None
    assert (await adm.prepare(resent, made, MEMBER)).spec == made.spec
    used = (await adm.quota.usage("demo"))[0]
    assert used.cpu == pytest.approx(0.25) and used.memory == 2**27


async def test_application_template_defaults_only_when_new_or_changed(store: RecordStore) -> None:
    adm = Admission(store)
    old = await store.create(app())  # made before defaults existed
    await store.create(record({"kind": "Quota", "metadata": {"name": "demo"},
                               "spec": {"limits": {"memory": "64Gi"}}}))  # fmt: skip
    scaled = old.model_copy(deep=True)
    scaled.spec.replicas = 2
    assert (await adm.prepare(scaled, old, MEMBER)).spec.template == old.spec.template
    changed = old.model_copy(deep=True)
    changed.spec.template.containers[0].image = "y"
    filled = (await adm.prepare(changed, old, MEMBER)).spec.template.containers[0].resources
    assert filled.cpu == AdmissionPolicy().default_cpu


async def test_networks_and_gitrepositories_count(store: RecordStore) -> None:
    adm = Admission(store)
    limits = {"networks": 1, "gitrepositories": 1}
    quota = {"kind": "Quota", "metadata": {"name": "demo"}, "spec": {"limits": limits}}
    await adm.create(record(quota), ADMIN)
    net = {"kind": "Network", "metadata": {"project": "demo"}, "spec": {}}
    await adm.create(record({**net, "metadata": {"name": "n1", "project": "demo"}}), MEMBER)
    exc = await refused(adm, record({**net, "metadata": {"name": "n2", "project": "demo"}}))
    assert "networks: 2 > 1" in str(exc)
    repo = {"kind": "GitRepository", "spec": {"url": "https://example.invalid/r.git"}}
    await adm.create(record({**repo, "metadata": {"name": "r1", "project": "demo"}}), MEMBER)
    exc = await refused(adm, record({**repo, "metadata": {"name": "r2", "project": "demo"}}))
    assert "gitrepositories: 2 > 1" in str(exc)


def event(name: str) -> Event:
    obj = record(
        {
            "kind": "Event",
            "metadata": {"name": name, "project": "demo"},
            "spec": {
                "involvedObject": {"kind": "Container", "name": "web"},
                "reason": "Spam",
                "firstTimestamp": NOW,
                "lastTimestamp": NOW,
            },
        }
    )
    assert isinstance(obj, Event)
    return obj


async def test_events_are_rate_limited_and_leased() -> None:
    kv = MemoryKV()
    store = RecordStore(kv)
    adm = Admission(store, AdmissionPolicy(event_rate=1.0, event_burst=3, event_ttl=60))
    t = [0.0]
    adm.events = EventAdmission(store, adm.policy, clock=lambda: t[0])
    for i in range(3):
        await adm.create(event(f"e{i}"), MEMBER)
    with pytest.raises(ForbiddenError, match="faster than 1/s"):
        await adm.create(event("e3"), MEMBER)
    t[0] = 1.0  # one token back
    await adm.create(event("e3"), MEMBER)
    key = "/zun/registry/events/demo/e0"
    assert any(key in keys for keys in kv._lease_keys.values()), "an Event outlives its lease"


async def test_children_are_checked_against_their_owner(store: RecordStore) -> None:
    adm = Admission(store)
    owner = await store.create(app(runtime="runsc"))
    ref = {"kind": "Application", "name": "web", "uid": owner.metadata.uid}
    child = ctr("web-r-0", runtime="runsc", meta={"ownerReferences": [ref]})
    assert (await adm.create_child(child, owner)).spec.runtime == "runsc"
    with pytest.raises(InvalidError, match=r"spec\.runtime"):
        await adm.create_child(
            ctr("web-r-1", runtime="runc", meta={"ownerReferences": [ref]}), owner
        )
    with pytest.raises(InvalidError, match="ownerReferences"):
        await adm.create_child(
            ctr("web-r-2", project="other", meta={"ownerReferences": [ref]}), owner
        )


def test_the_docker_planner_creates_a_bounded_step() -> None:
    step = plan(10**18, 0, 0, [], [])
    assert len(step.create) == MAX_CREATES and step.create == tuple(range(MAX_CREATES))


def test_policy_from_env() -> None:
    env = {"ZUN_ADMISSION_MAX_REPLICAS": "5", "ZUN_ADMISSION_HOST_IPS": "127.0.0.1, 10.0.0.1",
           "ZUN_ADMISSION_HOST_PORTS": "20000-21000"}  # fmt: skip
    policy = AdmissionPolicy.from_env(env)
    assert policy.max_replicas == 5 and policy.host_ports == (20000, 21000)
    assert policy.allowed_host_ips == {"127.0.0.1", "10.0.0.1"}
    with pytest.raises(ValueError, match="ZUN_ADMISSION_HOST_PORTS"):
        AdmissionPolicy.from_env({"ZUN_ADMISSION_HOST_PORTS": "80-90"})


async def test_records_made_before_a_rule_can_still_be_changed(store: RecordStore) -> None:
    adm = Admission(store, AdmissionPolicy(max_replicas=10))
    wide = await store.create(ctr(ports=[{"containerPort": 80, "hostIp": "0.0.0.0"}]))
    stop = wide.model_copy(deep=True)
    stop.spec.state = DesiredState.STOPPED
    assert (await adm.update(stop, wide, MEMBER)).spec.state == DesiredState.STOPPED
    big = await store.create(app("big", replicas=50))
    down, up = big.model_copy(deep=True), big.model_copy(deep=True)
    down.spec.replicas, up.spec.replicas = 20, 60
    assert (await adm.update(down, big, MEMBER)).spec.replicas == 20
    with pytest.raises(InvalidError, match=r"spec\.replicas"):
        await adm.update(up, await store.get(Application, "big", "demo"), MEMBER)


def test_a_container_of_another_project_is_never_an_applications_replica() -> None:
    """Records written straight to etcd skip admission: the docker orchestrator itself only
    counts (and so only scales, drains or deletes) Containers of the Application's project."""
    owner = app()
    owner.metadata.uid = "u-1"
    ref = {"kind": "Application", "name": "web", "uid": "u-1"}
    mine = ctr("web-r-0", meta={"ownerReferences": [ref]})
    theirs = ctr("web-r-0", project="other", meta={"ownerReferences": [ref]})
    assert _owned_by(mine, owner) and not _owned_by(theirs, owner)
