"""The Kubernetes manifests an Application maps to, and the observation read back from a
Deployment's status: pure functions, no cluster (the e2e suite checks them on a real one)."""

from __future__ import annotations

from typing import Any

import pytest

from zun_controller.drivers.orchestrators.kubernetes_objects import (
    LABEL_REVISION,
    deployment,
    is_ours,
    memory_quantity,
    service,
)
from zun_controller.drivers.orchestrators.kubernetes_status import endpoints, observation
from zun_controller.errors import PermanentError
from zun_controller.models.application import Application
from zun_controller.models.registry import parse


def make_app(**spec: Any) -> Application:
    body = {
        "cluster": "k",
        "template": {"containers": [{"name": "c", "image": "img:1"}]},
        **spec,
    }
    app = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web", "project": "demo", "uid": "u1"},
            "spec": body,
        }
    )
    assert isinstance(app, Application)
    return app


def test_defaults_percentages_and_exec_probe() -> None:
    app = make_app(
        healthcheck={"command": ["true"], "intervalSeconds": 0.5, "startPeriodSeconds": 2}
    )
    spec = deployment(app, app.spec.template, "r1")["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert spec["progressDeadlineSeconds"] == 120
    (container,) = spec["template"]["spec"]["containers"]
    probe = container["readinessProbe"]
    assert probe["exec"] == {"command": ["true"]}
    assert (probe["periodSeconds"], probe["initialDelaySeconds"]) == (1, 2)
    assert "resources" not in container and "env" not in container
    assert spec["template"]["metadata"]["labels"][LABEL_REVISION] == "r1"
    assert LABEL_REVISION not in spec["selector"]["matchLabels"]


def test_host_selector_becomes_a_node_selector_and_volumes_are_refused() -> None:
    app = make_app(
        template={"containers": [{"name": "c", "image": "i", "hostSelector": {"z": "a"}}]}
    )
    pod = deployment(app, app.spec.template, "r1")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"z": "a"}
    mounted = make_app(
        template={
            "containers": [
                {"name": "c", "image": "i", "volumes": [{"volume": "v", "mountPath": "/d"}]}
            ]
        }
    )
    with pytest.raises(PermanentError, match=r"containers\[0\]\.volumes"):
        deployment(mounted, mounted.spec.template, "r1")


@pytest.mark.parametrize(
    ("amount", "text"), [(64 * 2**20, "64Mi"), (2**30, "1Gi"), (1536, "1536"), (3 * 1024, "3Ki")]
)
def test_memory_quantities(amount: int, text: str) -> None:
    assert memory_quantity(amount) == text


def test_internal_service_has_no_node_ports() -> None:
    app = make_app(
        service={"type": "Internal", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}
    )
    assert app.spec.service is not None
    spec = service(app, app.spec.service)["spec"]
    assert spec["type"] == "ClusterIP" and "nodePort" not in spec["ports"][0]


def test_objects_of_others_are_not_ours() -> None:
    app = make_app()
    assert is_ours(deployment(app, app.spec.template, "r1"), app)
    assert not is_ours({"metadata": {"labels": {"app": "web"}}}, app)


def _deploy(generation: int, observed: int, reason: str, revision: str = "r2") -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {LABEL_REVISION: revision}}}},
        "status": {
            "observedGeneration": observed,
            "replicas": 4,
            "readyReplicas": 3,
            "updatedReplicas": 1,
            "availableReplicas": 3,
            "conditions": [
                {"type": "Progressing", "status": "False", "reason": reason, "message": "m"}
            ],
        },
    }


def test_deadline_exceeded_is_a_failure_of_that_revision_only() -> None:
    failed = observation(_deploy(2, 2, "ProgressDeadlineExceeded"), "r2", ())
    assert failed.failed == "ProgressDeadlineExceeded: m" and not failed.progressing
    assert failed.updated == 1 and failed.ready == 3
    other = observation(_deploy(2, 2, "ProgressDeadlineExceeded"), "r1", ())
    assert other.failed is None and other.updated == 0 and other.progressing


def test_a_status_older_than_the_spec_counts_nothing_as_updated() -> None:
    stale = observation(_deploy(3, 2, "NewReplicaSetAvailable"), "r2", ())
    assert stale.updated == 0 and stale.progressing and stale.failed is None


def test_endpoints_of_a_node_port_service() -> None:
    svc = {"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 80, "nodePort": 30080}]}}
    assert endpoints(svc) == ("10.96.0.9:80", "127.0.0.1:30080")
    assert endpoints(None) == ()
