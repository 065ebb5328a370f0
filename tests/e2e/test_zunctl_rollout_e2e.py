"""`zunctl scale` and `rollout status|history|undo|restart` against `zun-controller up` on the
real Docker engine: the replica containers change on the engine (found by Zun's labels), a
rollout that fails ends in the controller's rollback and a non-zero `rollout status`, and bad
command lines are one-line usage errors (exit 2)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from testbed.docker import (
    HTTPD_BROKEN,
    HTTPD_V1,
    HTTPD_V2,
    MAIN_SOCKET_URL,
    client,
    ensure_dockerd,
    ensure_test_images,
)
from zun_bed import clean_engine
from zunctl_bed import AllInOne, zunctl

from zun_controller.models.base import LABEL_KIND, LABEL_PROJECT

pytestmark = pytest.mark.e2e

APP = """\
apiVersion: zun.openstack.org/v1alpha1
kind: Cluster
metadata: {{name: local}}
spec: {{type: docker}}
---
apiVersion: zun.openstack.org/v1alpha1
kind: Application
metadata: {{name: web}}
spec:
  cluster: local
  replicas: 1
  template:
    containers: [{{name: httpd, image: "{image}", resources: {{cpu: 50m, memory: 32Mi}}}}]
  healthcheck: {{httpGet: {{port: 8080, path: /healthz}}, intervalSeconds: 1, retries: 2}}
  updateStrategy:
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
    progressDeadlineSeconds: 40
"""


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def project(engine: docker.DockerClient) -> Iterator[str]:
    name = f"roll{secrets.token_hex(3)}"
    yield name
    clean_engine(engine, (name,))


@pytest.fixture
def up(own_etcd, tmp_path: Path) -> Iterator[AllInOne]:
    aio = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL)
    yield aio
    aio.stop()


def replicas(engine: docker.DockerClient, project: str) -> list[tuple[str, str]]:
    """(image, restartedAt label) of the running replica containers of `web`."""
    labels = [f"{LABEL_PROJECT}={project}", f"{LABEL_KIND}=Container"]
    found = engine.containers.list(filters={"label": labels, "status": "running"})
    restarted = "zunctl.zun.openstack.org/restartedAt"
    return sorted((c.attrs["Config"]["Image"], c.labels.get(restarted, "")) for c in found)


def until(what: str, check, within: float = 90.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"not within {within}s: {what}")


@pytest.mark.timeout(420)
def test_scale_and_rollouts(project: str, up: AllInOne, engine: docker.DockerClient) -> None:
    def ctl(*args: str, stdin: str | None = None, timeout: float = 150):
        return zunctl(up.url, up.token, project, *args, stdin=stdin, timeout=timeout)

    def status(*extra: str) -> subprocess.CompletedProcess[str]:
        return ctl("rollout", "status", "application/web", "--timeout", "120s", *extra)

    assert ctl("apply", "-f", "-", stdin=APP.format(image=HTTPD_V1)).returncode == 0
    done = status()
    assert done.returncode == 0, done.stderr
    assert done.stdout == 'application "web" successfully rolled out\n'
    assert 'Waiting for application "web"' in done.stderr

    scaled = ctl("scale", "application/web", "--replicas=3")
    assert scaled.stdout == "application.zun.openstack.org/web scaled\n", scaled.stderr
    assert status().returncode == 0
    until("3 replicas on the engine", lambda: len(replicas(engine, project)) == 3)
    table = ctl("get", "application", "web").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"]
    assert table[1].split()[:4] == ["web", "3/3", "3", "3"]
    assert ctl("scale", "app", "web", "--replicas", "1").returncode == 0
    assert status().returncode == 0
    until("1 replica on the engine", lambda: len(replicas(engine, project)) == 1)

    assert ctl("apply", "-f", "-", stdin=APP.format(image=HTTPD_V2)).returncode == 0
    assert status().returncode == 0
    history = json.loads(ctl("rollout", "history", "app/web", "-o", "json").stdout)["revisions"]
    assert [(r["revision"], r["status"], r["images"]) for r in history] == [
        (1, "previous", [HTTPD_V1]),
        (2, "current", [HTTPD_V2]),
    ]
    assert history[1]["created"]  # the live replica records' time
    shown = ctl("rollout", "history", "application/web").stdout.splitlines()
    assert shown[1].split() == ["REVISION", "NAME", "STATUS", "CREATED", "IMAGES"]

    undo = ctl("rollout", "undo", "application/web")
    assert undo.stdout.startswith("application.zun.openstack.org/web rolled back to revision 1")
    assert status().returncode == 0
    until("v1 back on the engine", lambda: [i for i, _ in replicas(engine, project)] == [HTTPD_V1])

    assert ctl("rollout", "restart", "application/web").returncode == 0
    assert status().returncode == 0
    until("restarted replica", lambda: all(r for _, r in replicas(engine, project)))

    assert ctl("apply", "-f", "-", stdin=APP.format(image=HTTPD_BROKEN)).returncode == 0
    failed = status()
    assert failed.returncode == 1, failed.stdout
    assert failed.stderr.splitlines()[-1].startswith(
        "zunctl: application.zun.openstack.org/web rolled back: revision"
    )

    for bad, flag in (
        (("scale", "application/web"), "--replicas"),
        (("scale", "container/web", "--replicas=1"), "no rollouts or replicas"),
        (("rollout", "undo", "application/web", "--to-revision", "9"), "--to-revision"),
        (("rollout", "status", "application/web", "--timeout", "soon"), "--timeout"),
    ):
        got = ctl(*bad)
        assert got.returncode == 2 and flag in got.stderr and got.stderr.count("\n") == 1, got
