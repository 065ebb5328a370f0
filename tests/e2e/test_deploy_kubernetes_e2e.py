"""The Kubernetes manifests in deploy/kubernetes: the real kube-apiserver of the test bed
accepts `kubectl apply -k --dry-run=server` of all of them (schema, defaulting, admission,
RBAC objects), and the optional components render with kustomize."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600
EXPECTED = {
    ("Namespace", "zun-system"),
    ("ServiceAccount", "zun-controller"),
    ("ServiceAccount", "zun-api"),
    ("ServiceAccount", "zun-bridge"),
    ("ClusterRole", "zun-bridge"),
    ("ClusterRoleBinding", "zun-bridge"),
    ("Service", "zun-etcd"),
    ("Service", "zun-api"),
    ("Service", "zun-controller-metrics"),
    ("StatefulSet", "zun-etcd"),
    ("NetworkPolicy", "zun-etcd"),
    ("NetworkPolicy", "zun-controller"),
    ("NetworkPolicy", "zun-api"),
    ("Deployment", "zun-controller"),
    ("Deployment", "zun-api"),
    ("Deployment", "zun-bridge"),
}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"), nodes=1)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.mark.timeout(SETUP_TIMEOUT_S)
def test_server_side_dry_run_accepts_every_manifest(kube: KubeControlPlane) -> None:
    # a dry-run Namespace is not there for the dry-run objects inside it: make it for real
    kube.kubectl_run("create", "namespace", "zun-system")
    applied = kube.kubectl_run(
        "apply", "-k", str(MANIFESTS), "--dry-run=server", "-o", "yaml", check=False
    )
    assert applied.returncode == 0, applied.stderr
    items = yaml.safe_load(applied.stdout)["items"]
    names = {(o["kind"], o["metadata"]["name"]) for o in items}
    assert names >= EXPECTED
    controller = next(
        o for o in items if (o["kind"], o["metadata"]["name"]) == ("Deployment", "zun-controller")
    )
    pod = controller["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["image"] == "zun-controller:dev"
    assert kube.kubectl_run("-n", "zun-system", "get", "deploy", check=False).stdout == ""


def test_optional_components_render(kube: KubeControlPlane, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    base = os.path.relpath(MANIFESTS, overlay)  # kustomize takes relative paths only
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [base],
                "components": [
                    f"{base}/components/servicemonitor",
                    f"{base}/components/external-etcd",
                ],
            }
        )
    )
    rendered = kube.kubectl_run("kustomize", "--load-restrictor=LoadRestrictionsNone", str(overlay))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered.stdout)}
    assert ("ServiceMonitor", "zun-controller") in kinds
    assert ("StatefulSet", "zun-etcd") not in kinds
