"""The Kubernetes test bed: a real control plane with kwok nodes schedules and 'runs' pods."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from testbed.kube import BUILD_TIMEOUT_S, KubeControlPlane, start_control_plane

pytestmark = pytest.mark.e2e

# Starting the control plane takes ~10-30 s warm; the first run may also build the binaries.
SETUP_TIMEOUT_S = BUILD_TIMEOUT_S + 600

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: testbed
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: zun.invalid/fake-web:1
        resources:
          requests: {cpu: 100m, memory: 64Mi}
"""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeControlPlane]:
    plane = start_control_plane(tmp_path_factory.mktemp("kube"))
    try:
        yield plane
    finally:
        plane.stop()


def _pods_running(pods: dict[str, Any]) -> list[str]:
    return [
        p["metadata"]["name"]
        for p in pods["items"]
        if p["status"].get("phase") == "Running" and p["metadata"].get("deletionTimestamp") is None
    ]


@pytest.mark.timeout(SETUP_TIMEOUT_S)
def test_deployment_becomes_ready(kube: KubeControlPlane) -> None:
    nodes = kube.kubectl_json("get", "nodes")
    assert len(nodes["items"]) >= 1

    kube.kubectl_run("create", "namespace", "testbed")
    kube.kubectl_run("apply", "-f", "-", input_text=DEPLOYMENT)

    deadline = time.monotonic() + 90
    deploy: dict[str, Any] = {}
    running: list[str] = []
    while time.monotonic() < deadline:
        deploy = kube.kubectl_json("-n", "testbed", "get", "deploy", "web")
        pods = kube.kubectl_json("-n", "testbed", "get", "pods", "-l", "app=web")
        running = _pods_running(pods)
        if deploy.get("status", {}).get("readyReplicas") == 2 and len(running) == 2:
            break
        time.sleep(1)
    else:
        pytest.fail(
            f"deployment not ready in 90 s: status={deploy.get('status')} running={running}"
        )

    pods = kube.kubectl_json("-n", "testbed", "get", "pods", "-l", "app=web")
    for pod in pods["items"]:
        assert pod["spec"].get("nodeName", "").startswith("kwok-node-")
        ready = [c for c in pod["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
