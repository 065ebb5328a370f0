"""zunctl's kubectl verbs against `zun-controller up` on the real Docker engine, checked there
by Zun's labels: `scale` and `rollout status|history|undo|restart` change the replica
containers, a rollout that fails ends in the controller's rollback and a non-zero `rollout
status`; `label`, `annotate`, `patch` (merge and json) and `wait` (a condition, deletion)
with the global flags anywhere, `get -A`, `-l`, `--sort-by`, `-o name|jsonpath`. Bad command
lines are one-line usage errors (exit 2)."""

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

from zun_controller.models.base import LABEL_KIND, LABEL_NAME, LABEL_PROJECT

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
    found = engine.containers.list(
        ignore_removed=True, filters={"label": labels, "status": "running"}
    )
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
    def ctl(
        *args: str, stdin: str | None = None, timeout: float = 150
    ) -> subprocess.CompletedProcess[str]:
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


WEB = f"""\
apiVersion: zun.openstack.org/v1alpha1
kind: Container
metadata: {{name: web}}
spec: {{image: {HTTPD_V1}, resources: {{cpu: 50m, memory: 32Mi}}, env: [{{name: A, value: "1"}}]}}
"""


def engine_env(engine: docker.DockerClient, project: str) -> list[str]:
    """The environment of the running engine container of Container `web` (empty if none)."""
    labels = [f"{LABEL_PROJECT}={project}", f"{LABEL_KIND}=Container", f"{LABEL_NAME}=web"]
    found = engine.containers.list(
        ignore_removed=True, filters={"label": labels, "status": "running"}
    )
    return [e for c in found for e in c.attrs["Config"]["Env"] if e.startswith("A=")]


@pytest.mark.timeout(300)
def test_label_patch_wait_and_global_flags(
    project: str, up: AllInOne, engine: docker.DockerClient
) -> None:
    def ctl(*args: str, stdin: str | None = None):  # ZUN_PROJECT=default: -p says which
        return zunctl(up.url, up.token, "default", *args, stdin=stdin, timeout=120)

    assert ctl("-p", project, "apply", "-f", "-", stdin=WEB).returncode == 0
    ready = ctl("wait", "container/web", "--for=condition=Ready", "--timeout", "90s", "-p", project)
    assert ready.stdout == "container.zun.openstack.org/web condition met\n", ready.stderr
    assert engine_env(engine, project) == ["A=1"]

    assert ctl("-p", project, "label", "ctr", "web", "tier=front").stdout.endswith(" labeled\n")
    assert ctl("-p", project, "annotate", "ctr/web", "note=hi").stdout.endswith(" annotated\n")
    refused = ctl("-p", project, "label", "ctr", "web", "tier=back")
    assert refused.returncode == 1 and "--overwrite" in refused.stderr
    assert ctl("label", "ctr", "web", "tier=back", "--overwrite", "-p", project).returncode == 0
    listed = ctl("get", "ctr", "-l", "tier=back", "-o", "name", "-p", project)
    assert listed.stdout == "container.zun.openstack.org/web\n", listed.stderr
    assert ctl("get", "ctr", "-l", "tier=front", "-p", project).stdout == "No resources found.\n"
    shown = ctl("-o", "jsonpath={.metadata.labels.tier}/{.metadata.annotations.note}", "-p",
                project, "get", "ctr", "web")  # fmt: skip
    assert shown.stdout == "back/hi\n", shown.stderr
    assert ctl("label", "ctr", "web", "tier-", "-p", project).returncode == 0
    every = ctl("get", "ctr", "-A", "--sort-by", ".metadata.name").stdout.splitlines()
    assert every[0].split()[:2] == ["PROJECT", "NAME"]
    assert [project, "web"] in [r.split()[:2] for r in every[1:]]

    merged = ctl("-p", project, "patch", "ctr", "web", "--patch",
                 '{"spec": {"env": [{"name": "A", "value": "2"}]}}')  # fmt: skip
    assert merged.stdout == "container.zun.openstack.org/web patched\n", merged.stderr
    until("A=2 on the engine", lambda: engine_env(engine, project) == ["A=2"])
    ops = '[{"op": "replace", "path": "/spec/env/0/value", "value": "3"}]'
    as_json = ctl("-p", project, "patch", "ctr/web", "--type", "json", "--patch", ops, "-o", "json")
    assert json.loads(as_json.stdout)["spec"]["env"] == [{"name": "A", "value": "3"}]
    until("A=3 on the engine", lambda: engine_env(engine, project) == ["A=3"])
    assert ctl("-p", project, "patch", "ctr/web", "--type", "json", "--patch", ops).stdout.endswith(
        "patched (no change)\n"
    )

    for bad, flag in (
        (("label", "ctr", "web", "nope"), "label: 'nope'"),
        (("patch", "ctr", "web", "--type", "strategic", "--patch", "{}"), "--type"),
        (("patch", "ctr", "web", "--patch", "{nope"), "--patch: not JSON"),
        (
            (
                "patch",
                "ctr",
                "web",
                "--type",
                "json",
                "--patch",
                '[{"op":"add","path":"/status/x","value":1}]',
            ),
            "--patch",
        ),
        (("wait", "ctr", "web", "--for=ready"), "--for"),
        (("get", "ctr", "--sort-by", "{..name}"), "--sort-by"),
        (("get", "ctr", "-o", "jsonpath={..name}"), "-o jsonpath"),
    ):
        got = ctl("-p", project, *bad)
        assert got.returncode == 2 and flag in got.stderr and got.stderr.count("\n") == 1, got

    assert ctl("-p", project, "delete", "ctr", "web").returncode == 0
    gone = ctl("wait", "ctr/web", "--for=delete", "--timeout=60s", "-p", project)
    assert gone.stdout == "container.zun.openstack.org/web deleted\n", gone.stderr
    until("no engine container", lambda: not engine_env(engine, project), 60)
