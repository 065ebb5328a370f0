"""The Swarm service spec built from an Application, and the patch posted back to a service."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.drivers.orchestrators.rollout import surge_and_unavailable
from zun_controller.drivers.orchestrators.swarm_spec import LABEL_REVISION, managed_fields, patch
from zun_controller.errors import PermanentError
from zun_controller.models.application import Application, UpdateStrategy
from zun_controller.models.registry import parse


def _app(**spec: Any) -> Application:
    body = {
        "cluster": "sw",
        "replicas": 4,
        "template": {"containers": [{"name": "web", "image": "zun-test/httpd:v1"}]},
        "service": {"ports": [{"port": 80, "targetPort": 8080}]},
        **spec,
    }
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web", "project": "demo", "uid": "u-1"},
            "spec": body,
        }
    )
    assert isinstance(obj, Application)
    return obj


def test_strategy_counts_round_like_deployments() -> None:
    strategy = UpdateStrategy.model_validate(
        {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    )
    assert surge_and_unavailable(strategy, 5) == (2, 1)
    zero = UpdateStrategy.model_validate({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    assert surge_and_unavailable(zero, 3) == (1, 0)


def test_spec_has_host_mode_ports_pause_on_failure_and_labels() -> None:
    app = _app(healthcheck=None)
    spec = managed_fields(app, app.spec.template, "r1")
    assert spec["Name"] == "zun_demo_web"
    assert spec["Mode"] == {"Replicated": {"Replicas": 4}}
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}
    ]
    assert spec["UpdateConfig"]["FailureAction"] == "pause"
    assert spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["TaskTemplate"]["ContainerSpec"]["Labels"][LABEL_REVISION] == "r1"
    assert spec["Labels"]["zun.openstack.org/uid"] == "u-1"


def test_more_than_one_container_is_unsupported_naming_the_field() -> None:
    containers = [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]
    app = _app(template={"containers": containers})
    with pytest.raises(PermanentError) as err:
        managed_fields(app, app.spec.template, "r1")
    assert err.value.reason == "Unsupported"
    assert err.value.message.startswith("spec.template.containers:")


def test_patch_changes_only_what_differs() -> None:
    app = _app()
    wanted = managed_fields(app, app.spec.template, "r1")
    stored = {**wanted, "TaskTemplate": {**wanted["TaskTemplate"], "ForceUpdate": 0}}
    # the engine leaves zero values out of the spec it stores
    stored["UpdateConfig"] = {k: v for k, v in wanted["UpdateConfig"].items() if v != 0}
    assert patch(stored, wanted) is None
    scaled = managed_fields(_app(replicas=7), app.spec.template, "r1")
    posted = patch(stored, scaled)
    assert posted is not None
    assert posted["Mode"] == {"Replicated": {"Replicas": 7}}
    assert posted["TaskTemplate"] == stored["TaskTemplate"]  # engine defaults kept as they are
    hand_scaled = {**stored, "Mode": {"Replicated": {"Replicas": 1}}}
    assert patch(hand_scaled, wanted)["Mode"] == wanted["Mode"]  # type: ignore[index]
