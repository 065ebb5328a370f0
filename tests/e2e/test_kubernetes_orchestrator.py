"""KubernetesOrchestrator on the real control plane (kwok nodes): Deployments and Services that
say what the Application says, scale, upgrade, a failing upgrade reported, hand edits undone,
delete. Every check reads the cluster through kubectl, as a user would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane

from zun_controller.drivers.orchestrators.base import AppObservation
from zun_controller.drivers.orchestrators.kubernetes import KubernetesOrchestrator
from zun_controller.drivers.orchestrators.kubernetes_objects import (
    deployment,
    in_namespace,
    namespace_labels,
)
from zun_controller.errors import ConflictError, PermanentError, TransientError
from zun_controller.models.application import Application
from zun_controller.models.registry import parse

pytestmark = pytest.mark.e2e

REVISION_LABEL = "zun.openstack.org/revision"
#: The first test may wait for the module's control plane to be built (cold cache, as in CI).
SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
async def orch(kube: KubeControlPlane) -> AsyncIterator[KubernetesOrchestrator]:
    orchestrator = KubernetesOrchestrator("kube", kube.kubeconfig.read_text())
    yield orchestrator
    await orchestrator.close()


@pytest.fixture
def project(kube: KubeControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, removed afterwards (Zun keeps namespaces)."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    yield name
    for namespace in (name, ns(name)):
        kube.kubectl_run("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def ns(project: str) -> str:
    """The namespace Zun gives a project's apps."""
    return f"zun-{project}"


def make_app(project: str, name: str = "web", **spec: Any) -> Application:
    container = {
        "name": "web",
        "image": "zun-test/httpd:v1",
        "command": ["httpd"],
        "args": ["-f", "-p", "8080"],
        "env": [{"name": "GREETING", "value": "hello"}],
        "ports": [{"containerPort": 8080}],
        "resources": {"cpu": "250m", "memory": "64Mi"},
    }
    body: dict[str, Any] = {
        "cluster": "kube",
        "replicas": 3,
        "template": {"containers": [container]},
        "service": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}]},
        "healthcheck": {"httpGet": {"path": "/", "port": 8080}, "intervalSeconds": 2},
        "updateStrategy": {
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            "progressDeadlineSeconds": 30,
        },
    }
    body.update(spec)
    record = {
        "apiVersion": "zun.openstack.org/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "project": project, "uid": f"uid-{project}-{name}"},
        "spec": body,
    }
    app = parse(record)
    assert isinstance(app, Application)
    return app


def with_image(app: Application, image: str, **container: Any) -> Application:
    record = app.to_wire()
    record["spec"]["template"]["containers"][0] |= {"image": image, **container}
    new = parse(record)
    assert isinstance(new, Application)
    return new


async def until(
    orch: KubernetesOrchestrator,
    app: Application,
    revision: str,
    done: Callable[[AppObservation], bool],
    within: float = 30.0,
) -> AppObservation:
    deadline = time.monotonic() + within
    while True:
        seen = await orch.observe(app, revision)
        if done(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {within} s: {seen}")
        await asyncio.sleep(0.2)


def converged(app: Application) -> Callable[[AppObservation], bool]:
    n = app.spec.replicas
    return lambda o: o.ready == o.updated == o.replicas == n and not o.progressing


def get(kube: KubeControlPlane, project: str, what: str) -> Any:
    return kube.kubectl_json("-n", ns(project), "get", what)


def replica_sets(kube: KubeControlPlane, project: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(kube, project, "rs")["items"]
    return items


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_application_becomes_ready_as_the_spec_says(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project)
    await orch.apply(app, app.spec.template, "r1")
    seen = await until(orch, app, "r1", converged(app))

    deploy = get(kube, project, "deploy/web")
    assert deploy["spec"]["replicas"] == 3 and deploy["status"]["readyReplicas"] == 3
    assert deploy["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert deploy["spec"]["progressDeadlineSeconds"] == 30
    assert deploy["metadata"]["labels"]["zun.openstack.org/uid"] == app.metadata.uid
    pod = deploy["spec"]["template"]
    assert pod["metadata"]["labels"][REVISION_LABEL] == "r1"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "zun-test/httpd:v1"
    assert container["command"] == ["httpd"] and container["args"] == ["-f", "-p", "8080"]
    assert container["env"] == [{"name": "GREETING", "value": "hello"}]
    assert container["resources"]["limits"] == {"cpu": "250m", "memory": "64Mi"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert container["readinessProbe"]["httpGet"]["port"] == 8080
    assert container["readinessProbe"]["periodSeconds"] == 2
    assert container["livenessProbe"]["httpGet"]["path"] == "/"

    svc = get(kube, project, "svc/web")
    assert svc["spec"]["type"] == "NodePort"
    (port,) = svc["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")
    assert f"127.0.0.1:{port['nodePort']}" in seen.endpoints
    assert f"{svc['spec']['clusterIP']}:80" in seen.endpoints

    namespace = kube.kubectl_json("get", "namespace", ns(project))
    assert namespace["metadata"]["labels"]["zun.openstack.org/managed-by"] == "zun-controller"
    owned = await orch.list_owned()
    assert any((o.project, o.name, o.uid) == (project, "web", app.metadata.uid) for o in owned)
    info = await orch.info()
    assert info.version.startswith("v1.") and info.nodes == 2 and info.cpus >= 2


async def test_scale_and_upgrade_converge(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project, replicas=2)
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))

    scaled = make_app(project, replicas=5)
    await orch.apply(scaled, scaled.spec.template, "r1")
    await until(orch, scaled, "r1", converged(scaled))
    assert get(kube, project, "deploy/web")["status"]["readyReplicas"] == 5

    upgraded = with_image(scaled, "zun-test/httpd:v2")
    await orch.apply(upgraded, upgraded.spec.template, "r2")
    seen = await until(orch, upgraded, "r2", converged(upgraded))
    assert seen.revision == "r2"
    sets = replica_sets(kube, project)
    by_revision = {rs["spec"]["template"]["metadata"]["labels"][REVISION_LABEL]: rs for rs in sets}
    assert set(by_revision) == {"r1", "r2"}
    assert by_revision["r2"]["status"]["readyReplicas"] == 5
    assert by_revision["r1"]["spec"]["replicas"] == 0
    pods = get(kube, project, "pods")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["containers"][0]["image"] for p in live} == {"zun-test/httpd:v2"}


async def test_recreate_strategy_and_internal_service(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(
        project,
        updateStrategy={"type": "Recreate", "minReadySeconds": 1},
        service={"type": "Internal", "ports": [{"port": 8080, "targetPort": 8080}]},
    )
    await orch.apply(app, app.spec.template, "r1")
    seen = await until(orch, app, "r1", converged(app))
    deploy = get(kube, project, "deploy/web")
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert deploy["spec"]["minReadySeconds"] == 1
    svc = get(kube, project, "svc/web")
    assert svc["spec"]["type"] == "ClusterIP"
    assert seen.endpoints == (f"{svc['spec']['clusterIP']}:8080",)


async def test_failing_upgrade_is_reported_and_the_previous_template_restores(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    deadline = {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}, "progressDeadlineSeconds": 3}
    app = make_app(project, updateStrategy=deadline)
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))

    # No kwok node has 500 cores: the new pods never get scheduled, so never become Ready.
    broken = with_image(app, "zun-test/httpd:v2", resources={"cpu": 500, "memory": "64Mi"})
    await orch.apply(broken, broken.spec.template, "r2")
    seen = await until(orch, broken, "r2", lambda o: o.failed is not None, within=40)
    assert seen.failed is not None and "ProgressDeadlineExceeded" in seen.failed
    assert seen.ready == 3 and seen.updated == 1 and not seen.progressing  # old ones still serve

    # What the Application reconciler does: apply the previous template again.
    await orch.apply(app, app.spec.template, "r1")
    seen = await until(orch, app, "r1", converged(app))
    assert seen.failed is None and seen.revision == "r1"
    pods = get(kube, project, "pods")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {p["metadata"]["labels"][REVISION_LABEL] for p in live} == {"r1"}


async def test_hand_edits_are_undone_by_apply(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project)
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))

    kube.kubectl_run("-n", ns(project), "scale", "deploy/web", "--replicas=1")
    kube.kubectl_run("-n", ns(project), "set", "image", "deploy/web", "web=zun-test/httpd:evil")
    kube.kubectl_run("-n", ns(project), "delete", "svc/web")
    assert get(kube, project, "deploy/web")["spec"]["replicas"] == 1

    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))
    deploy = get(kube, project, "deploy/web")
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "zun-test/httpd:v1"
    assert get(kube, project, "svc/web")["spec"]["type"] == "NodePort"

    kube.kubectl_run("-n", ns(project), "delete", "deploy/web", "--wait=false")
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))
    assert get(kube, project, "deploy/web")["status"]["readyReplicas"] == 3


async def test_delete_cleans_up_and_keeps_the_namespace(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project)
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))

    deadline = time.monotonic() + 30
    while not await orch.delete(app):
        assert time.monotonic() < deadline, "delete did not finish in 30 s"
        await asyncio.sleep(0.2)
    for what in ("deploy", "svc", "rs", "pods"):
        assert get(kube, project, what)["items"] == [], what
    assert not (await orch.observe(app, "r1")).exists
    assert all(o.project != project for o in await orch.list_owned())
    assert kube.kubectl_json("get", "namespace", ns(project))["status"]["phase"] == "Active"
    assert await orch.delete(app)  # idempotent


async def test_objects_zun_did_not_make_are_left_alone(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    kube.kubectl_run("create", "namespace", ns(project))
    labels = ["zun.openstack.org/managed-by=zun-controller", f"zun.openstack.org/project={project}"]
    kube.kubectl_run("label", "namespace", ns(project), *labels)
    kube.kubectl_run("-n", ns(project), "create", "deployment", "web", "--image=someone/else:1")
    app = make_app(project)
    with pytest.raises(PermanentError) as caught:
        await orch.apply(app, app.spec.template, "r1")
    assert caught.value.reason == "NameConflict"
    assert await orch.delete(app)  # nothing of ours: done at once, theirs untouched
    deploy = get(kube, project, "deploy/web")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "someone/else:1"

    kube.kubectl_run("-n", ns(project), "create", "service", "clusterip", "api", "--tcp=80:8080")
    other = make_app(project, name="api")
    with pytest.raises(PermanentError, match="NameConflict"):
        await orch.apply(other, other.spec.template, "r1")
    names = [d["metadata"]["name"] for d in get(kube, project, "deploy")["items"]]
    assert names == ["web"]  # nothing half-applied
    assert "zun.openstack.org/uid" not in (
        get(kube, project, "svc/api")["metadata"].get("labels") or {}
    )


async def test_invalid_spec_names_the_field(orch: KubernetesOrchestrator, project: str) -> None:
    app = make_app(
        project,
        service={"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080, "nodePort": 80}]},
    )
    with pytest.raises(PermanentError) as caught:
        await orch.apply(app, app.spec.template, "r1")
    assert caught.value.reason == "InvalidSpec"
    assert "spec.ports[0].nodePort" in caught.value.message


async def test_unreachable_cluster_is_transient(kube: KubeControlPlane) -> None:
    text = kube.kubeconfig.read_text()
    server = next(line.split()[-1] for line in text.splitlines() if "server:" in line)
    orch = KubernetesOrchestrator("gone", text.replace(server, "https://127.0.0.1:9"), timeout=2)
    started = time.monotonic()
    try:
        with pytest.raises(TransientError):
            await orch.info()
    finally:
        await orch.close()
    assert time.monotonic() - started < 10


async def test_a_namespace_deleted_by_hand_is_made_again(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project, replicas=1)
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))

    # A finalizer on a ConfigMap keeps the namespace Terminating until the test lets it go.
    meta = {"name": "hold", "namespace": ns(project), "finalizers": ["zun.test/hold"]}
    hold = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    kube.kubectl_run("apply", "-f", "-", input_text=json.dumps(hold))
    kube.kubectl_run("delete", "namespace", ns(project), "--wait=false")
    # Updates of what is still there would pass while the namespace empties (in ~10 s here);
    # creates are refused: take the Deployment and Service away at once.
    kube.kubectl_run("-n", ns(project), "delete", "deploy,svc", "--all", "--wait=false")
    with pytest.raises(ConflictError, match="being terminated"):
        await orch.apply(app, app.spec.template, "r1")
    release = '[{"op": "remove", "path": "/metadata/finalizers"}]'
    kube.kubectl_run("-n", ns(project), "patch", "configmap/hold", "--type=json", "-p", release)
    kube.kubectl_run(
        "wait", "--for=delete", f"namespace/{ns(project)}", "--timeout=60s", timeout=70
    )
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))
    assert get(kube, project, "svc/web")["spec"]["type"] == "NodePort"


NAMESPACE = {"apiVersion": "v1", "kind": "Namespace"}


@pytest.fixture
def default_project(kube: KubeControlPlane) -> Iterator[str]:
    """The project named `default` (its namespace `zun-default` removed afterwards)."""
    yield "default"
    kube.kubectl_run("delete", "namespace", ns("default"), "--ignore-not-found", "--wait=false")


async def test_a_project_never_lands_in_a_namespace_it_does_not_own(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, default_project: str, project: str
) -> None:
    app = make_app(default_project, replicas=1)
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))
    assert get(kube, default_project, "deploy/web")["metadata"]["namespace"] == "zun-default"
    assert kube.kubectl_json("-n", "default", "get", "deploy")["items"] == []
    # a zun-<project> that is not the project's (no labels, or another project's) is not used
    kube.kubectl_run("create", "namespace", ns(project))
    other = make_app(project)
    with pytest.raises(PermanentError, match=f"Namespace {ns(project)} exists and is not"):
        await orch.apply(other, other.spec.template, "r1")
    assert get(kube, project, "deploy")["items"] == []
    assert await orch.delete(other)


async def test_an_earlier_versions_namespace_keeps_its_apps_running_there(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    # what an earlier version made: the namespace named after the project, with its labels,
    # and the Deployment applied into it
    app = make_app(project, replicas=1)
    meta = {"name": project, "labels": namespace_labels(project)}
    kube.kubectl_run("apply", "-f", "-", input_text=json.dumps({**NAMESPACE, "metadata": meta}))
    legacy = in_namespace(deployment(app, app.spec.template, "r1"), project)
    kube.kubectl_run(
        "apply", "--server-side", "--field-manager=zun-controller", "-f", "-",
        input_text=json.dumps(legacy),
    )  # fmt: skip
    before = kube.kubectl_json("-n", project, "get", "deploy/web")["metadata"]
    await orch.apply(app, app.spec.template, "r1")
    await until(orch, app, "r1", converged(app))
    after = kube.kubectl_json("-n", project, "get", "deploy/web")["metadata"]
    assert (after["uid"], after["generation"]) == (before["uid"], before["generation"])
    found = kube.kubectl_run("get", "namespace", ns(project), check=False)
    assert found.returncode != 0  # no second copy in zun-<project>
