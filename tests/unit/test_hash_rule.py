"""The hash rule: a Container's config hash and an Application's revision hash what the user
set, are pinned on fixed records, do not move when a model gains a defaulted field or the
engine name changes, and what the code before the rule made stays up to date."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from pydantic import Field

from zun_controller.drivers.runtime.fake import FakeRuntimeFactory
from zun_controller.engine.manager import Manager
from zun_controller.metrics import Metrics
from zun_controller.models.application import (
    AppContainer,
    Application,
    ApplicationSpec,
    AppTemplate,
    Revision,
)
from zun_controller.models.base import LABEL_CONFIG_HASH, LABEL_UID, ObjectMeta
from zun_controller.models.container import Container, ContainerSpec
from zun_controller.models.host import Host
from zun_controller.reconcilers import container_config
from zun_controller.reconcilers.app_revision import revision_for, revision_of, target
from zun_controller.reconcilers.container_config import (
    EngineObjects,
    config_hash,
    desired_config,
    is_current,
)
from zun_controller.reconcilers.legacy_hash import legacy_config_hash, legacy_revision
from zun_controller.reconcilers.naming import default_network_labels
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.codec import encode
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

RICH: dict[str, Any] = {
    "metadata": {"name": "web-1", "project": "demo", "uid": "0b5e8c4e-1d2f-4a57-9c11-6f3e2a9d7b10"},
    "spec": {
        "image": "zun-test/httpd:v1",
        "command": ["httpd"],
        "args": ["-f", "-p", "8080"],
        "env": [{"name": "A", "value": "1"}, {"name": "B"}],
        "workdir": "/srv",
        "hostname": "web",
        "labels": {"tier": "front"},
        "ports": [
            {"containerPort": 8080, "hostPort": 18080, "name": "http"},
            {"containerPort": 53, "protocol": "UDP"},
        ],
        "resources": {"cpu": "500m", "memory": "64Mi"},
        "restartPolicy": "OnFailure",
        "networks": ["backend"],
        "volumes": [{"volume": "data", "mountPath": "/data", "readOnly": True}],
        "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}, "intervalSeconds": 2},
        "runtime": "runc",
        "rebuiltAt": "2026-01-02T03:04:05+01:00",
    },
}
MINIMAL: dict[str, Any] = {
    "metadata": {"name": "solo", "project": "p1", "uid": "u-1"},
    "spec": {"image": "busybox"},
}
TEMPLATE: dict[str, Any] = {
    "labels": {"app": "shop"},
    "containers": [
        {
            "name": "web",
            "image": "zun-test/httpd:v1",
            "ports": [{"containerPort": 8080}],
            "healthcheck": {"command": ["true"]},
            "env": [{"name": "X", "value": "y"}],
        }
    ],
}
MINIMAL_TEMPLATE: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}

#: the hash rule's values: a change that moves one restarts every workload it names
PINNED_HASHES = {"rich": "82fd1bb26920c550", "minimal": "86f4436baf5570f6"}
PINNED_REVISIONS = {"rich": "43b1ae59d5", "minimal": "eb328a5db6"}
#: what the code before the rule (commit 8b9b570) computed for the same records, printed by
#: that code: the frozen functions must keep giving exactly these
LEGACY_HASHES = {"rich": "74a5d94b0f3ae838", "minimal": "965a20f7e9970900"}
LEGACY_REVISIONS = {"rich": "7015a1ebaf", "minimal": "e22cd797d3"}

CONTAINERS = {"rich": RICH, "minimal": MINIMAL}
TEMPLATES = {"rich": TEMPLATE, "minimal": MINIMAL_TEMPLATE}


def container(case: str) -> Container:
    return Container.model_validate(CONTAINERS[case])


def from_etcd(obj: Container) -> Container:
    """The record as decoded from etcd: every field present, defaults written out."""
    return Container.model_validate(json.loads(encode(obj)))


class SpecWithPull(ContainerSpec):
    """A spec the controller might grow: new fields whose defaults mean what it did before."""

    sandbox_profile: str = "default"
    extra_groups: list[str] = Field(default_factory=list)


class AppContainerWithPull(AppContainer):
    sandbox_profile: str = "default"


class TemplateWithPull(AppTemplate):
    containers: list[AppContainerWithPull] = Field(min_length=1)  # type: ignore[assignment]
    pull_timeout_seconds: int = 300


def grown(case: str, **fields: Any) -> Container:
    obj = container(case)
    obj.spec = SpecWithPull.model_validate({**CONTAINERS[case]["spec"], **fields})
    return obj


@pytest.mark.parametrize("case", ["rich", "minimal"])
def test_container_hashes_are_pinned(case: str) -> None:
    obj = container(case)
    assert config_hash(obj) == PINNED_HASHES[case]
    assert config_hash(from_etcd(obj)) == PINNED_HASHES[case]
    assert desired_config(obj).labels[LABEL_CONFIG_HASH] == PINNED_HASHES[case]


@pytest.mark.parametrize("case", ["rich", "minimal"])
def test_revisions_are_pinned(case: str) -> None:
    template = AppTemplate.model_validate(TEMPLATES[case])
    assert revision_of(template) == PINNED_REVISIONS[case]
    decoded = AppTemplate.model_validate(template.model_dump(mode="json", by_alias=True))
    assert revision_of(decoded) == PINNED_REVISIONS[case]


@pytest.mark.parametrize("case", ["rich", "minimal"])
def test_the_frozen_functions_give_what_the_code_before_the_rule_gave(case: str) -> None:
    assert legacy_config_hash(container(case)) == LEGACY_HASHES[case]
    assert legacy_config_hash(from_etcd(container(case))) == LEGACY_HASHES[case]
    assert legacy_revision(AppTemplate.model_validate(TEMPLATES[case])) == LEGACY_REVISIONS[case]


@pytest.mark.parametrize("case", ["rich", "minimal"])
def test_a_field_gained_with_a_default_moves_no_hash(case: str) -> None:
    obj = grown(case)
    assert config_hash(obj) == PINNED_HASHES[case]
    assert config_hash(from_etcd(obj)) == PINNED_HASHES[case]
    assert legacy_config_hash(obj) == LEGACY_HASHES[case]
    template = TemplateWithPull.model_validate(TEMPLATES[case])
    assert revision_of(template) == PINNED_REVISIONS[case]
    assert legacy_revision(template) == LEGACY_REVISIONS[case]


def test_a_new_field_set_by_the_user_is_a_change_the_frozen_hash_cannot_vouch_for() -> None:
    obj = grown("rich", sandbox_profile="strict")
    assert config_hash(obj) != PINNED_HASHES["rich"]
    assert legacy_config_hash(obj) is None
    assert not is_current(LEGACY_HASHES["rich"], obj)
    template = TemplateWithPull.model_validate({**TEMPLATE, "pullTimeoutSeconds": 5})
    assert revision_of(template) != PINNED_REVISIONS["rich"]
    assert legacy_revision(template) is None


def test_the_engine_name_and_derived_names_are_not_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    obj = container("rich")
    before = desired_config(obj)
    monkeypatch.setattr(container_config, "container_name", lambda p, n: f"zun-x{p}-{n}-0")
    monkeypatch.setattr(container_config, "network_name", lambda p, n: f"zun-x{p}-{n}")
    after = desired_config(obj)
    assert after.name != before.name and after.networks != before.networks
    assert after.labels[LABEL_CONFIG_HASH] == PINNED_HASHES["rich"]
    assert legacy_config_hash(obj) == LEGACY_HASHES["rich"]


@pytest.mark.parametrize(
    "change",
    [
        {"resources": {"cpu": 2, "memory": "1Gi"}},
        {"state": "Stopped"},
        {"restartedAt": "2026-05-01T00:00:00Z"},
        {"hostSelector": {"zone": "b"}},
        {"rebuiltAt": "2026-01-02T02:04:05+00:00"},  # the same instant, another zone
    ],
)
def test_what_never_recreates_is_not_in_the_hash(change: dict[str, Any]) -> None:
    obj = Container.model_validate({**RICH, "spec": {**RICH["spec"], **change}})
    assert config_hash(obj) == PINNED_HASHES["rich"]


@pytest.mark.parametrize(
    "change",
    [
        {"image": "zun-test/httpd:v2"},
        {"env": [{"name": "A", "value": "2"}]},
        {"labels": {}},
        {"rebuiltAt": "2026-03-01T00:00:00Z"},
        {"healthcheck": None},
    ],
)
def test_what_recreates_is_in_both_hashes(change: dict[str, Any]) -> None:
    obj = Container.model_validate({**RICH, "spec": {**RICH["spec"], **change}})
    assert config_hash(obj) != PINNED_HASHES["rich"]
    assert legacy_config_hash(obj) != LEGACY_HASHES["rich"]
    assert not is_current(LEGACY_HASHES["rich"], obj)
    assert not is_current(PINNED_HASHES["rich"], obj)


def application(current: str | None, template: dict[str, Any] = TEMPLATE) -> Application:
    app = Application(
        metadata=ObjectMeta(name="shop", project="demo", uid="a-1"),
        spec=ApplicationSpec(cluster="local", template=AppTemplate.model_validate(template)),
    )
    app.status.current_revision = current
    return app


def test_an_application_made_before_the_rule_keeps_its_revision() -> None:
    app = application(LEGACY_REVISIONS["rich"])
    assert revision_for(app, app.spec.template) == LEGACY_REVISIONS["rich"]
    chosen = target(app)
    assert chosen.revision == LEGACY_REVISIONS["rich"] and not chosen.held_back
    assert app.status.current_revision == LEGACY_REVISIONS["rich"]
    assert app.status.previous_revision is None


def test_a_template_changed_since_rolls_to_a_revision_of_the_rule() -> None:
    app = application(LEGACY_REVISIONS["rich"], {**TEMPLATE, "labels": {"app": "shop2"}})
    chosen = target(app)
    assert chosen.revision == revision_of(app.spec.template) != LEGACY_REVISIONS["rich"]
    assert app.status.previous_revision == LEGACY_REVISIONS["rich"]


def test_a_failed_revision_named_before_the_rule_stays_failed() -> None:
    """Status from before the rule: the good template ran as `good`, the spec's template
    failed as `bad` and was rolled back. The spec's template is still held back."""
    good = {**TEMPLATE, "labels": {"app": "good"}}
    app = application(None)
    bad_name = LEGACY_REVISIONS["rich"]
    good_name = legacy_revision(AppTemplate.model_validate(good))
    assert good_name is not None
    app.status.current_revision, app.status.previous_revision = good_name, bad_name
    app.status.failed_revision = bad_name
    app.status.history = [Revision(name=good_name, template=AppTemplate.model_validate(good))]
    chosen = target(app)
    assert chosen.held_back and chosen.revision == good_name
    assert app.status.failed_revision == bad_name


def test_no_label_is_no_current_container() -> None:
    assert not is_current(None, container("minimal"))


def test_a_new_application_is_named_by_the_rule() -> None:
    app = application(None)
    assert target(app).revision == PINNED_REVISIONS["rich"]


async def test_a_container_made_before_the_rule_is_not_recreated() -> None:
    """The engine holds what the code before the rule made (its frozen hash label); the
    reconciler keeps it, until the spec really changes."""
    store = RecordStore(MemoryKV())
    factory = FakeRuntimeFactory(images=("zun-test/httpd:v1", "zun-test/httpd:v2"))
    manager = Manager(metrics=Metrics(), health_port=None)
    ctl = RuntimeControllers(manager, store, manager.metrics, factory, stop_grace=0)
    host = await store.create(_host())
    assert host.name == "a"
    created = await store.create(
        Container(
            metadata=ObjectMeta(
                name="web", project="demo", finalizers=["zun.openstack.org/runtime"]
            ),
            spec=ContainerSpec(image="zun-test/httpd:v1", labels={"tier": "front"}),
        )
    )
    created.status.host = "a"
    obj = await store.update_status(created)
    engine = factory("a", "tcp://a:2375")
    # what the code before the rule made: its names (zun-<project>...), our labels
    await engine.ensure_network("zun-demo", default_network_labels("demo"))
    old = desired_config(obj, EngineObjects(("zun-demo",)), name="zun-demo-web")
    legacy = legacy_config_hash(obj)
    assert legacy is not None and legacy != config_hash(obj)
    made = await engine.create(replace(old, labels={**old.labels, LABEL_CONFIG_HASH: legacy}))
    await engine.start(made.id)
    stop = asyncio.Event()
    task = asyncio.create_task(manager.run(stop))
    try:
        obj = await _until(ctl, lambda c: c.status.phase == "Running")
        ours = [c for c in await engine.list_containers({LABEL_UID: obj.metadata.uid or ""})]
        assert [c.id for c in ours] == [made.id] and obj.status.container_id == made.id
        obj.spec.image = "zun-test/httpd:v2"
        await store.update(obj)
        obj = await _until(ctl, lambda c: c.status.container_id not in (None, made.id))
        assert await engine.inspect(made.id) is None
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _host() -> Host:
    return Host.model_validate({"metadata": {"name": "a"}, "spec": {"endpoint": "tcp://a:2375"}})


async def _until(ctl: RuntimeControllers, check: Any, within: float = 5.0) -> Container:
    async with asyncio.timeout(within):
        while True:
            obj = ctl.containers.get_by_name("web", "demo")
            if obj is not None and check(obj):
                return obj
            await asyncio.sleep(0.01)
