"""Records: validation errors name the field path and the reason; nothing invalid is stored."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.errors import InvalidError
from zun_controller.models.container import Container
from zun_controller.models.quantity import parse_cpu, parse_memory
from zun_controller.models.registry import lookup, parse
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore


def record(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": "zun.openstack.org/v1alpha1",
        "kind": "Container",
        "metadata": {"name": "web-1", "project": "demo"},
        "spec": {"image": "busybox"},
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("overrides", "path", "reason"),
    [
        ({"metadata": {"name": "Web_1", "project": "demo"}}, "metadata.name", "DNS-1123"),
        ({"metadata": {"name": "x" * 64, "project": "demo"}}, "metadata.name", "63"),
        ({"kind": "Kontainer"}, "kind", "unknown kind 'Kontainer'"),
        ({"apiVersion": "v1"}, "apiVersion", "must be"),
        ({"spec": {}}, "spec.image", "Field required"),
        ({"spec": {"image": "b", "imgae": "x"}}, "spec.imgae", "Extra inputs"),
        (
            {"spec": {"image": "b", "ports": [{"containerPort": 0}]}},
            "spec.ports[0].containerPort",
            "greater than or equal to 1",
        ),
        (
            {"spec": {"image": "b", "resources": {"memory": "1Qi"}}},
            "spec.resources.memory",
            "quantity",
        ),
        ({"spec": {"image": "b", "state": "Sleeping"}}, "spec.state", "Running"),
        ({"spec": {"image": "b", "healthcheck": {}}}, "spec.healthcheck", "exactly one"),
        (
            {"spec": {"image": "b", "restartedAt": "2025-01-01T00:00:00"}},
            "spec.restartedAt",
            "timezone",
        ),
        ({"metadata": {"name": "web-1"}}, "metadata.project", "project-scoped"),
        (
            {"metadata": {"name": "w", "project": "d", "labels": {"bad key!": "v"}}},
            "metadata.labels",
            "qualified name",
        ),
    ],
)
def test_invalid_input_names_the_field_and_the_reason(
    overrides: dict[str, Any], path: str, reason: str
) -> None:
    with pytest.raises(InvalidError) as caught:
        parse(record(**overrides))
    assert any(e.path == path and reason in e.reason for e in caught.value.errors), caught.value


def test_cluster_scoped_kind_refuses_a_project() -> None:
    data = record(kind="Host", metadata={"name": "h1", "project": "demo"})
    data["spec"] = {"endpoint": "unix:///var/run/docker.sock"}
    with pytest.raises(InvalidError, match=r"metadata\.project: Host is cluster-scoped"):
        parse(data)


def test_lookup_by_kind_plural_or_short_name() -> None:
    assert lookup("container") is lookup("containers") is lookup("ctr") is Container
    with pytest.raises(InvalidError, match="known kinds"):
        lookup("pods")


def test_quantities() -> None:
    assert parse_memory("256Mi") == 256 * 2**20
    assert parse_memory("1G") == 10**9
    assert parse_memory(1024) == 1024
    assert parse_cpu("500m") == 0.5
    assert parse_cpu(2) == 2.0
    with pytest.raises(ValueError, match="not a cpu quantity"):
        parse_cpu("lots")


async def test_a_record_that_fails_scope_checks_is_not_written() -> None:
    store = RecordStore(MemoryKV())
    obj = Container.model_construct(
        metadata=parse(record()).metadata.model_copy(update={"project": None}),
        spec=parse(record()).spec,
    )
    with pytest.raises(InvalidError, match=r"metadata\.project"):
        await store.create(obj)
    assert (await store.kv.range("/")).kvs == []


def test_wire_format_round_trips() -> None:
    obj = parse(record(spec={"image": "b", "resources": {"cpu": "250m", "memory": "64Mi"}}))
    again = parse(obj.to_wire())
    assert again == obj
    assert obj.to_wire()["spec"]["resources"] == {"cpu": 0.25, "memory": 64 * 2**20}


def test_a_restart_is_pending_while_restarted_at_is_newer_than_the_one_acted_on() -> None:
    obj = parse(record(spec={"image": "b", "restartedAt": "2025-01-01T10:00:00Z"}))
    assert isinstance(obj, Container) and obj.restart_pending()
    obj.status.restarted_at = obj.spec.restarted_at
    assert not obj.restart_pending()
    older = parse(record(spec={"image": "b", "restartedAt": "2025-01-01T11:00:00+02:00"}))
    assert isinstance(older, Container)
    obj.spec.restarted_at = older.spec.restarted_at  # 09:00 UTC: put back by another writer
    assert not obj.restart_pending()
    obj.spec.restarted_at = None
    assert not obj.restart_pending()
    assert obj.to_wire()["status"]["restartedAt"] == "2025-01-01T10:00:00Z"
