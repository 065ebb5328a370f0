"""The sandboxed runtime: a project's runtime is what its new containers get from every
writer and what a member cannot leave; an admin may name another; a Host's runtime is for the
containers naming none, and a Host never takes one out of its runtime; the scheduler sends a
container only where its runtime is; none of it changes an existing container's config hash."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.admission import ADMIN, Admission, Writer
from zun_controller.errors import ForbiddenError, InvalidError
from zun_controller.models.application import Application
from zun_controller.models.base import Resource
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.project import Project
from zun_controller.models.registry import parse
from zun_controller.reconcilers.container_config import config_hash, desired_config
from zun_controller.reconcilers.scheduler import Candidate, Request, schedule
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

MEMBER = Writer("member of demo")


def record(kind: str, name: str, spec: dict[str, Any], project: str | None = "demo") -> Any:
    meta: dict[str, Any] = {"name": name, **({"project": project} if project else {})}
    return parse(
        {"apiVersion": "zun.openstack.org/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}
    )


def ctr(name: str = "web", **spec: Any) -> Container:
    obj = record("Container", name, {"image": "x", **spec})
    assert isinstance(obj, Container)
    return obj


def app(name: str = "web", *, cluster: str = "local", replicas: int = 1, **c: Any) -> Application:
    spec = {
        "cluster": cluster,
        "replicas": replicas,
        "template": {"containers": [{"name": "main", "image": "x", **c}]},
    }
    obj = record("Application", name, spec)
    assert isinstance(obj, Application)
    return obj


@pytest.fixture
def store() -> RecordStore:
    return RecordStore(MemoryKV())


async def sandboxed(store: RecordStore, runtime: str | None = "runsc") -> Admission:
    spec = {"runtime": runtime} if runtime else {}
    await store.create(record("Project", "demo", spec, project=None))
    return Admission(store)


async def refusal(adm: Admission, obj: Resource, writer: Writer = MEMBER) -> Exception:
    before = await adm.store.kv.revision()
    with pytest.raises((ForbiddenError, InvalidError)) as caught:
        await adm.create(obj, writer)
    assert await adm.store.kv.revision() == before, "a refusal wrote something"
    return caught.value


async def test_a_projects_runtime_is_given_to_every_writers_new_containers(
    store: RecordStore,
) -> None:
    adm = await sandboxed(store)
    assert (await adm.create(ctr("a"), MEMBER)).spec.runtime == "runsc"
    assert (await adm.create(ctr("b"), ADMIN)).spec.runtime == "runsc"
    made = await adm.create(app(), MEMBER)
    assert made.spec.template.containers[0].runtime == "runsc"
    assert (await adm.create(ctr("c", runtime="runsc"), MEMBER)).spec.runtime == "runsc"


async def test_a_member_cannot_name_another_runtime(store: RecordStore) -> None:
    adm = await sandboxed(store)
    exc = await refusal(adm, ctr(runtime="runc"))
    assert isinstance(exc, ForbiddenError) and "spec.runtime" in str(exc) and "runsc" in str(exc)
    exc = await refusal(adm, app(runtime="runc"))
    assert "spec.template.containers[0].runtime" in str(exc)
    made = await adm.create(ctr(), MEMBER)
    changed = made.model_copy(deep=True)
    changed.spec.runtime = "runc"
    with pytest.raises(ForbiddenError, match=r"spec\.runtime"):
        await adm.update(changed, made, MEMBER)
    resent = made.model_copy(deep=True)
    resent.spec.runtime = None  # a Git source or the bridge re-sends its spec without it
    assert (await adm.update(resent, made, MEMBER)).spec.runtime == "runsc"


async def test_an_admin_may_name_another_runtime(store: RecordStore) -> None:
    adm = await sandboxed(store)
    assert (await adm.create(ctr(runtime="runc"), ADMIN)).spec.runtime == "runc"
    kept = await store.get(Container, "web", "demo")
    kept.spec.image = "y"  # a member may change the rest of what an admin made
    assert (
        await adm.update(kept, await store.get(Container, "web", "demo"), MEMBER)
    ).spec.runtime == "runc"


async def test_a_changed_project_runtime_applies_to_new_containers_only(
    store: RecordStore,
) -> None:
    adm = await sandboxed(store, runtime=None)
    old_ctr = await adm.create(ctr("old"), MEMBER)
    old_app = await adm.create(app(replicas=1), MEMBER)
    project = await store.get(Project, "demo")
    project.spec.runtime = "runsc"
    await store.update(project)
    edited = old_ctr.model_copy(deep=True)
    edited.spec.image = "y"
    assert (await adm.update(edited, old_ctr, MEMBER)).spec.runtime is None
    scaled = old_app.model_copy(deep=True)
    scaled.spec.replicas = 2  # the template, and so the revision, stay as they were
    scaled = await adm.update(scaled, old_app, MEMBER)
    assert scaled.spec.template.containers[0].runtime is None
    rolled = scaled.model_copy(deep=True)
    rolled.spec.template.containers[0].image = "y"  # a new template takes the project's
    assert (await adm.update(rolled, scaled, MEMBER)).spec.template.containers[0].runtime == (
        "runsc"
    )
    assert (await adm.create(ctr("new"), MEMBER)).spec.runtime == "runsc"


async def test_sandboxed_applications_stay_on_clusters_that_choose_runtimes(
    store: RecordStore,
) -> None:
    adm = await sandboxed(store)
    swarm = {"type": "swarm", "endpoint": "unix:///run/swarm.sock"}
    await store.create(record("Cluster", "sw", swarm, project=None))
    await store.create(record("Cluster", "local", {"type": "docker"}, project=None))
    exc = await refusal(adm, app(cluster="sw"))
    assert isinstance(exc, InvalidError) and [e.path for e in exc.errors] == ["spec.cluster"]
    assert (await adm.create(app(cluster="local"), MEMBER)).spec.cluster == "local"
    assert (await adm.create(app("w2", cluster="sw"), ADMIN)).spec.cluster == "sw"


async def test_children_run_their_owners_runtime(store: RecordStore) -> None:
    adm = await sandboxed(store)
    owner = await adm.create(app(), MEMBER)
    ref = {"kind": "Application", "name": "web", "uid": owner.metadata.uid}
    child = ctr("web-r-0", runtime="runsc")
    child.metadata = child.metadata.model_validate(
        {**child.metadata.model_dump(by_alias=True), "ownerReferences": [ref]}
    )
    assert (await adm.create_child(child, owner)).spec.runtime == "runsc"
    other = child.model_copy(
        deep=True, update={"spec": child.spec.model_copy(update={"runtime": "runc"})}
    )
    other.metadata.name = "web-r-1"
    with pytest.raises(InvalidError, match=r"spec\.runtime"):
        await adm.create_child(other, owner)


def test_a_hosts_runtime_is_for_containers_naming_none_and_leaves_the_hash_alone() -> None:
    plain = ctr()
    plain.metadata.uid = "u1"
    assert desired_config(plain).runtime is None
    on_sandbox_host = desired_config(plain, host_runtime="runsc")
    assert on_sandbox_host.runtime == "runsc"
    assert desired_config(plain).labels == on_sandbox_host.labels  # hash too: none recreated
    boxed = ctr(runtime="runsc")  # what a record names is never replaced by a Host's
    assert desired_config(boxed, host_runtime="runc").runtime == "runsc"


def test_the_new_fields_leave_stored_records_as_they_were() -> None:
    """A Project or Host without a runtime dumps as before the field existed (the previous
    release reads it), and a Container's hash is what it was without the field."""
    project = record("Project", "demo", {"description": "d"}, project=None)
    host = record("Host", "h", {"endpoint": "unix:///x.sock"}, project=None)
    assert isinstance(project, Project) and isinstance(host, Host)
    assert "runtime" not in project.model_dump(by_alias=True)["spec"]
    assert "runtime" not in host.model_dump(by_alias=True)["spec"]
    assert config_hash(ctr()) != config_hash(ctr(runtime="runsc"))


def candidate(name: str, runtimes: tuple[str, ...], runtime: str | None = None) -> Candidate:
    return Candidate(
        name, {}, True, True, 4.0, 2**32, 0.0, 0, 0, frozenset(runtimes), runtime=runtime
    )


def test_containers_go_only_where_their_runtime_is() -> None:
    plain, sandbox = candidate("plain", ("runc",)), candidate("sbx", ("runc", "runsc"))
    assert schedule([plain, sandbox], Request(runtime="runsc")).host == "sbx"
    refused = schedule([plain], Request(runtime="runsc"))
    assert refused.host is None and "'runsc' is not registered" in refused.reason
    broken = candidate("enf", ("runc",), runtime="runsc")  # its own runtime is missing
    assert schedule([broken], Request()).host is None
    runc_only = candidate("runc-only", ("runc", "runsc"), runtime="runc")
    out = schedule([runc_only], Request(runtime="runsc"))  # no way out of the sandbox
    assert out.host is None and "runs only runtime 'runc'" in out.reason
    assert schedule([runc_only, sandbox], Request(runtime="runsc")).host == "sbx"
    assert schedule([runc_only], Request(runtime="runc")).host == "runc-only"
    assert schedule([candidate("new", ())], Request(runtime="runsc")).host == "new"
