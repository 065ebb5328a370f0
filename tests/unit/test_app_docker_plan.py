"""The Docker orchestrator's rolling-update steps and its balancer configuration."""

from __future__ import annotations

from zun_controller.models.application import Application
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_docker_lb import Backend, render
from zun_controller.reconcilers.app_docker_plan import Replica, Step, plan


def _r(name: str, index: int, ready: bool = True) -> Replica:
    return Replica(name, index, ready)


def test_scale_up_and_down_without_a_rollout() -> None:
    assert plan(3, 1, 0, [_r("a", 0)], []) == Step(create=(1, 2))
    step = plan(1, 1, 0, [_r("a", 0), _r("b", 1, ready=False), _r("c", 2)], [])
    assert step == Step(drain=("b", "c"))  # not ready first, then the highest index


def test_rollout_surges_then_drains_old_only_as_new_ones_get_ready() -> None:
    old = [_r("o0", 0), _r("o1", 1)]
    assert plan(2, 1, 0, [], old) == Step(create=(0,))
    assert plan(2, 1, 0, [_r("n0", 0, ready=False)], old) == Step()
    assert plan(2, 1, 0, [_r("n0", 0)], old) == Step(drain=("o1",))
    assert plan(2, 1, 0, [_r("n0", 0)], old[:1]) == Step(create=(1,))
    assert plan(2, 1, 0, [_r("n0", 0), _r("n1", 1)], old[:1]) == Step(drain=("o0",))


def test_a_failing_new_revision_never_takes_ready_old_replicas_away() -> None:
    old = [_r("o0", 0), _r("o1", 1)]
    new = [_r("n0", 0, ready=False)]
    assert plan(2, 1, 0, new, old).drain == ()
    # rolled back: the failed replicas are the old ones now, and go at once
    assert plan(2, 1, 0, old, new) == Step(drain=("n0",))


def test_balancer_config_lists_ready_backends_with_checks_and_redispatch() -> None:
    app = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "web", "project": "demo"},
            "spec": {
                "cluster": "dk",
                "template": {
                    "containers": [
                        {
                            "name": "h",
                            "image": "x",
                            "healthcheck": {"httpGet": {"port": 8080, "path": "/healthz"}},
                        }
                    ]
                },
                "service": {"ports": [{"port": 80, "targetPort": 8080}]},
            },
        }
    )
    assert isinstance(app, Application)
    text = render(app, [Backend("web-r-1", "10.0.0.3")])
    assert "bind :80" in text and "option redispatch" in text
    assert "httpchk" not in text  # membership is the health gate (see app_docker_lb)
    assert "server web-r-1 10.0.0.3:8080" in text
