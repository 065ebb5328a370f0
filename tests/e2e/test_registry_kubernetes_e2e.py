"""Registry credentials of an Application on the real Kubernetes control plane (kwok nodes pull
nothing, so what is checked is the objects, through kubectl): a `kubernetes.io/dockerconfigjson`
Secret in the app's namespace holding the credentials, referenced by the Deployment's pod
template, gone with the app; an app without credentials gets neither."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane

from zun_controller.drivers.orchestrators.kubernetes import KubernetesOrchestrator
from zun_controller.drivers.orchestrators.kubernetes_objects import namespace_of
from zun_controller.drivers.runtime.base import RegistryAuth
from zun_controller.models.application import Application, AppTemplate
from zun_controller.models.registry import parse

pytestmark = pytest.mark.e2e
SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600
REGISTRY = "registry.example.test:5000"
PASSWORD = "k8s-Pa55-word"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


def credentials(app: Application, template: AppTemplate) -> RegistryAuth | None:
    """As the controller resolves them: only for a template that names a PullSecret."""
    if not template.containers[0].image_pull_secrets:
        return None
    return RegistryAuth(REGISTRY, "alice", PASSWORD)


@pytest.fixture
async def orch(kube: KubeControlPlane) -> AsyncIterator[KubernetesOrchestrator]:
    orchestrator = KubernetesOrchestrator(
        "kube", kube.kubeconfig.read_text(), credentials=credentials
    )
    yield orchestrator
    await orchestrator.close()


@pytest.fixture
def project(kube: KubeControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40]
    yield name
    kube.kubectl_run(
        "delete",
        "namespace",
        namespace_of(make_app(name, [])),
        "--ignore-not-found",
        "--wait=false",
    )


def make_app(project: str, secrets: list[dict[str, str]]) -> Application:
    container: dict[str, Any] = {"name": "web", "image": f"{REGISTRY}/team/httpd:v1"}
    if secrets:
        container["imagePullSecrets"] = secrets
    app = parse({
        "apiVersion": "zun.openstack.org/v1alpha1", "kind": "Application",
        "metadata": {"name": "web", "project": project, "uid": f"uid-{project}"},
        "spec": {"cluster": "kube", "replicas": 1, "template": {"containers": [container]}},
    })  # fmt: skip
    assert isinstance(app, Application)
    return app


def names(kube: KubeControlPlane, namespace: str, what: str) -> set[str]:
    items = kube.kubectl_json("-n", namespace, "get", what)["items"]
    return {i["metadata"]["name"] for i in items}


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_the_pull_secret_is_made_referenced_and_removed_with_the_app(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project, [{"name": "regcred"}])
    await orch.apply(app, app.spec.template, "r1")
    secret = kube.kubectl_json("-n", namespace_of(app), "get", "secret", "web-pull")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"][REGISTRY]["username"] == "alice"
    assert config["auths"][REGISTRY]["password"] == PASSWORD
    assert secret["metadata"]["labels"]["zun.openstack.org/uid"] == f"uid-{project}"
    deploy = kube.kubectl_json("-n", namespace_of(app), "get", "deployment", "web")
    assert deploy["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "web-pull"}]
    while not await orch.delete(app):
        pass
    assert "web-pull" not in names(kube, namespace_of(app), "secrets")


@pytest.mark.timeout(SETUP_TIMEOUT_S)
async def test_an_app_without_pull_secrets_gets_no_secret_and_loses_one_it_had(
    kube: KubeControlPlane, orch: KubernetesOrchestrator, project: str
) -> None:
    app = make_app(project, [])
    await orch.apply(app, app.spec.template, "r1")
    deploy = kube.kubectl_json("-n", namespace_of(app), "get", "deployment", "web")
    assert "imagePullSecrets" not in deploy["spec"]["template"]["spec"]
    assert "web-pull" not in names(kube, namespace_of(app), "secrets")
    with_secret = make_app(project, [{"name": "regcred"}])
    await orch.apply(with_secret, with_secret.spec.template, "r2")
    assert "web-pull" in names(kube, namespace_of(app), "secrets")
    await orch.apply(app, app.spec.template, "r3")  # the template names none any more
    assert "web-pull" not in names(kube, namespace_of(app), "secrets")
