"""Engine names two projects cannot share, the upgrade path for objects named the earlier
way, and the rule that an engine object whose labels are not ours is never adopted, patched
or removed (on the fake runtime, which the contract suite keeps in step with Docker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_runtime_reconcilers import IMAGES, Bed, reason

from zun_controller.drivers.orchestrators.kubernetes_objects import (
    legacy_namespace,
    namespace_of,
    selector,
)
from zun_controller.drivers.orchestrators.swarm_spec import service_name
from zun_controller.drivers.runtime.base import ContainerConfig, ContainerStatus
from zun_controller.models.application import Application
from zun_controller.models.base import ObjectMeta
from zun_controller.models.container import Container
from zun_controller.models.network import Network, Volume
from zun_controller.reconcilers.container_config import EngineObjects, desired_config
from zun_controller.reconcilers.engine_names import resolve, volume_wanted
from zun_controller.reconcilers.naming import (
    MANAGED,
    container_name,
    default_network,
    default_network_labels,
    labels_for,
    legacy_name,
    network_name,
    volume_name,
)

PAIRS = [("acme", "prod-data"), ("acme-prod", "data")]


def test_two_projects_that_shared_a_legacy_name_get_different_engine_names() -> None:
    assert len({legacy_name(p, n) for p, n in PAIRS}) == 1  # the attack of issue 23
    for namer in (container_name, network_name, volume_name):
        assert len({namer(p, n) for p, n in PAIRS}) == 2
    assert default_network("acme-prod") not in {network_name(p, n) for p, n in PAIRS}
    assert network_name("acme", "prod") != default_network("acme-prod")
    assert volume_name("acme", "prod-data") == "zun_acme_prod-data"


def _app(project: str, name: str) -> Application:
    return Application.model_validate(
        {
            "metadata": ObjectMeta(name=name, project=project).model_dump(by_alias=True),
            "spec": {"cluster": "c", "template": {"containers": [{"name": "a", "image": "x"}]}},
        }
    )


def test_swarm_service_names_are_distinct_dns_labels_even_when_long() -> None:
    assert service_name(_app("acme", "prod-web")) != service_name(_app("acme-prod", "web"))
    long_a, long_b = _app("p" * 40, "a" * 40), _app("p" * 40, "a" * 39 + "b")
    names = {service_name(long_a), service_name(long_b)}
    assert len(names) == 2 and all(len(n) == 63 for n in names)
    assert all(n.startswith("zun_" + "p" * 40) for n in names)


def test_kubernetes_namespaces_are_prefixed_so_no_project_lands_in_default() -> None:
    assert namespace_of(_app("default", "web")) == "zun-default"
    assert namespace_of(_app("kube-system", "web")) == "zun-kube-system"
    assert legacy_namespace(_app("acme", "web")) == "acme"
    long = {namespace_of(_app("p" * 60 + s, "web")) for s in ("ab", "ac")}
    assert len(long) == 2 and all(len(n) <= 63 and not n.endswith("-") for n in long)
    assert selector(_app("acme", "web"))["zun.openstack.org/project"] == "acme"


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    bed = Bed()
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    yield bed
    stop.set()
    await asyncio.wait_for(task, 10)


def _get(bed: Bed, kind: Any, name: str, project: str) -> Any:
    records: dict[Any, Any] = {
        Container: bed.ctl.containers,
        Volume: bed.ctl.volumes,
        Network: bed.ctl.networks,
    }
    return records[kind].get_by_name(name, project)


async def _reason_is(bed: Bed, kind: Any, name: str, project: str, wanted: str) -> Any:
    def reached() -> bool:
        obj = _get(bed, kind, name, project)
        return obj is not None and reason(obj) == wanted

    await bed.until(reached)
    return _get(bed, kind, name, project)


async def test_resolve_keeps_a_legacy_object_only_when_it_carries_the_records_labels() -> None:
    bed = Bed()
    engine = bed.factory("a", "tcp://a:2375")
    theirs = await bed.apply("Volume", "data", {}, project="acme-prod")
    mine = await bed.apply("Volume", "prod-data", {}, project="acme")
    await engine.ensure_volume("zun-acme-prod-data", labels_for(theirs))
    assert isinstance(theirs, Volume) and isinstance(mine, Volume)
    assert await resolve(engine, volume_wanted("acme", "prod-data", mine)) == "zun_acme_prod-data"
    assert await resolve(engine, volume_wanted("acme-prod", "data", theirs)) == (
        "zun-acme-prod-data"
    )


async def test_an_upgrade_adopts_the_container_networks_and_volumes_of_the_earlier_names() -> None:
    bed = Bed()
    # what the earlier version left running: container, default network and volume under
    # zun-<project>-<name>, with the records' labels
    await bed.apply("Host", "a", {"endpoint": "tcp://a:2375"})
    volume = await bed.apply("Volume", "data", {"host": "a"})
    assert isinstance(volume, Volume)
    spec = {"image": IMAGES[0], "volumes": [{"volume": "data", "mountPath": "/data"}]}
    created = await bed.apply("Container", "web", spec, finalizers=["zun.openstack.org/runtime"])
    assert isinstance(created, Container)
    created.status.host = "a"
    obj = await bed.store.update_status(created)
    engine = bed.factory("a", "tcp://a:2375")
    await engine.ensure_network("zun-demo", default_network_labels("demo"))
    await engine.ensure_volume("zun-demo-data", labels_for(volume))
    legacy = EngineObjects(("zun-demo",), {"data": "zun-demo-data"})
    made = await engine.create(desired_config(obj, legacy, name="zun-demo-web"))
    await engine.start(made.id)
    stop = asyncio.Event()
    task = asyncio.create_task(bed.manager.run(stop))
    try:
        running = await bed.phase("web", "Running")
        await bed.until(lambda: _get(bed, Volume, "data", "demo").status.phase == "InUse")
        assert running.status.container_id == made.id
        assert [(c.id, c.config.name) for c in engine._containers.values()] == [
            (made.id, "zun-demo-web")
        ]
        assert engine._containers[made.id].status == ContainerStatus.RUNNING
        assert set(engine._networks) - {"bridge", "host", "none"} == {"zun-demo"}
        assert set(engine._volumes) == {"zun-demo-data"}
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_container_name_held_by_a_container_not_ours_is_a_conflict_left_alone(
    bed: Bed,
) -> None:
    await bed.host("a")
    engine = bed.engine("a")
    await engine.ensure_network("zun_demo", default_network_labels("demo"))
    foreign_labels = {**MANAGED, "zun.openstack.org/project": "demo", "zun.openstack.org/uid": "x"}
    foreign = await engine.create(
        ContainerConfig(name="zun_demo_web", image=IMAGES[1], labels=foreign_labels)
    )
    await engine.start(foreign.id)
    await bed.apply("Container", "web", {"image": IMAGES[0]})
    obj = await _reason_is(bed, Container, "web", "demo", "NameConflict")
    assert "zun_demo_web" in (obj.status.condition("Ready").message or "")
    await asyncio.sleep(0.2)  # a few passes more: still not touched
    assert [c.id for c in engine._containers.values()] == [foreign.id]
    assert engine._containers[foreign.id].status == ContainerStatus.RUNNING


async def test_a_legacy_name_shared_with_another_project_is_never_mounted_or_removed(
    bed: Bed,
) -> None:
    await bed.host("a")
    engine = bed.engine("a")
    theirs = await bed.apply("Volume", "data", {"host": "a"}, project="acme-prod")
    await bed.until(lambda: "zun_acme-prod_data" in engine._volumes)
    # acme-prod's volume as the earlier version named it (its data lives there)
    engine._volumes["zun-acme-prod-data"] = engine._volumes.pop("zun_acme-prod_data")
    engine._volumes["zun-acme-prod-data"].name = "zun-acme-prod-data"
    assert isinstance(theirs, Volume)
    await bed.apply("Volume", "prod-data", {}, project="acme")
    spec = {"image": IMAGES[0], "volumes": [{"volume": "prod-data", "mountPath": "/d"}]}
    await bed.apply("Container", "web", spec, project="acme")
    await bed.until(lambda: _get(bed, Container, "web", "acme") is not None)
    await bed.until(lambda: _get(bed, Container, "web", "acme").status.phase == "Running")
    web = _get(bed, Container, "web", "acme")
    mounted = engine._containers[web.status.container_id].config.mounts
    assert [m.volume for m in mounted] == ["zun_acme_prod-data"]
    await bed.store.delete(Container, "web", "acme")
    await bed.store.delete(Volume, "prod-data", "acme")
    await bed.until(lambda: _get(bed, Volume, "prod-data", "acme") is None)
    assert set(engine._volumes) == {"zun-acme-prod-data"}
    assert engine._volumes["zun-acme-prod-data"].labels == labels_for(theirs)


async def test_a_network_name_held_by_another_is_a_conflict_and_survives_delete(bed: Bed) -> None:
    await bed.host("a")
    engine = bed.engine("a")
    foreign = await engine.ensure_network("zun_demo_backend", {"owner": "someone"})
    await bed.apply("Network", "backend", {})
    await _reason_is(bed, Network, "backend", "demo", "NameConflict")
    await bed.store.delete(Network, "backend", "demo")
    await bed.until(lambda: _get(bed, Network, "backend", "demo") is None)
    assert engine._networks["zun_demo_backend"].id == foreign.id
