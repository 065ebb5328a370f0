"""The bridge's downward sync goes through admission as a member of the namespace's project:
an admin-only field or an exceeded quota is refused, shown on the custom resource, and no
record is written."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from zun_controller.bridge.operator import Downward
from zun_controller.models.base import ObjectMeta
from zun_controller.models.container import Container
from zun_controller.models.project import Project, ProjectSpec, Quota, QuotaLimits, QuotaSpec
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore


def resource(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"image": "zun-test/httpd:v1", **spec},
    }


async def names(store: RecordStore) -> list[str]:
    return [c.name for c in (await store.list(Container, "demo")).items]


async def test_a_custom_resource_cannot_set_the_runtime_or_pass_the_quota() -> None:
    store = RecordStore(MemoryKV())
    quota = Quota(
        metadata=ObjectMeta(name="demo"), spec=QuotaSpec(limits=QuotaLimits(containers=1))
    )
    await store.create(quota)
    down = Downward(store)
    patch = SimpleNamespace(status={})
    with pytest.raises(kopf.TemporaryError):
        await down.sync("Container", resource("sandbox-off", runtime="runc"), patch)
    assert patch.status["conditions"][0]["reason"] == "Refused"
    assert "spec.runtime" in patch.status["conditions"][0]["message"]
    await down.sync("Container", resource("a"), SimpleNamespace(status={}))
    patch = SimpleNamespace(status={})
    with pytest.raises(kopf.TemporaryError):
        await down.sync("Container", resource("b"), patch)
    assert "exceeded quota" in patch.status["conditions"][0]["message"]
    assert await names(store) == ["a"]


async def test_a_sandboxed_projects_custom_resources_run_its_runtime_and_keep_it() -> None:
    store = RecordStore(MemoryKV())
    await store.create(Project(metadata=ObjectMeta(name="demo"), spec=ProjectSpec(runtime="runsc")))
    down = Downward(store)
    patch = SimpleNamespace(status={})
    with pytest.raises(kopf.TemporaryError):
        await down.sync("Container", resource("escape", runtime="runc"), patch)
    assert "'runsc'" in patch.status["conditions"][0]["message"]
    await down.sync("Container", resource("a"), SimpleNamespace(status={}))
    assert (await store.get(Container, "a", "demo")).spec.runtime == "runsc"
    # the resource is synced again as it is in Kubernetes, without a runtime: it keeps runsc
    await down.sync("Container", resource("a", env=[{"name": "V"}]), SimpleNamespace(status={}))
    again = await store.get(Container, "a", "demo")
    assert again.spec.runtime == "runsc" and again.spec.env[0].name == "V"
    assert await names(store) == ["a"]
