"""README's quick tour end to end: `zun-controller up`, then `zunctl` apply, get, logs, exec and
delete --wait of a Container on the real Docker engine, checked from the outside."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from zun_bed import clean_engine
from zunctl_bed import AllInOne, zunctl

from zun_controller.models.base import LABEL_PROJECT
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def project(engine: docker.DockerClient) -> Iterator[str]:
    name = f"demo{secrets.token_hex(3)}"
    yield name
    clean_engine(engine, (name,))


@pytest.fixture
def up(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[AllInOne]:
    aio = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL)
    yield aio
    aio.stop()


MANIFEST = f"""\
apiVersion: zun.openstack.org/v1alpha1
kind: Container
metadata: {{name: web}}
spec:
  image: {HTTPD_V1}
  ports: [{{containerPort: 8080}}]
  resources: {{cpu: 100m, memory: 32Mi}}
"""


def until_running(up: AllInOne, project: str, within: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        table = zunctl(up.url, up.token, project, "get", "ctr")
        if "Running" in table.stdout:
            got = zunctl(up.url, up.token, project, "get", "ctr", "web", "-o", "json")
            return json.loads(got.stdout)  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"web not Running in `zunctl get`:\n{table.stdout}{table.stderr}")


@pytest.mark.timeout(240)
def test_readme_tour(
    up: AllInOne, project: str, engine: docker.DockerClient, tmp_path: Path
) -> None:
    def ctl(*args: str, stdin: str | None = None):
        return zunctl(up.url, up.token, project, *args, stdin=stdin)

    hosts = ctl("get", "hosts")
    assert hosts.returncode == 0 and "local" in hosts.stdout, hosts.stderr
    (tmp_path / "web.yaml").write_text(MANIFEST)
    applied = ctl("apply", "-f", str(tmp_path / "web.yaml"))
    assert applied.stdout == "container.zun.openstack.org/web created\n", applied.stderr
    assert ctl("apply", "-f", "-", stdin=MANIFEST).stdout.endswith("web unchanged\n")
    assert ctl("diff", "-f", "-", stdin=MANIFEST).returncode == 0

    obj = until_running(up, project)
    port = obj["status"]["ports"][0]["hostPort"]
    assert "zun-test httpd v1" in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text

    logs = ctl("logs", "web", "--tail", "20")
    assert logs.returncode == 0 and "listening on :8080" in logs.stdout, logs.stderr
    ran = ctl("exec", "web", "--", "sh", "-c", "echo hello-from-$HOSTNAME; exit 3")
    assert ran.returncode == 3 and ran.stdout.startswith("hello-from-"), ran.stderr
    described = ctl("describe", "ctr", "web")
    assert "Phase" not in described.stderr and "phase: Running" in described.stdout

    gone = ctl("delete", "ctr", "web", "--wait")
    assert gone.returncode == 0 and "web deleted" in gone.stdout, gone.stderr
    labels = f"{LABEL_PROJECT}={project}"
    assert engine.containers.list(ignore_removed=True, all=True, filters={"label": labels}) == []
    missing = ctl("get", "ctr", "web")
    assert missing.returncode == 1
    assert missing.stderr == f"zunctl: containers 'web' not found in project '{project}'\n"


def test_a_bad_token_is_one_line_and_non_zero(up: AllInOne, project: str) -> None:
    bad = zunctl(up.url, "zun_wrong", project, "get", "containers")
    assert bad.returncode == 1
    said = "zunctl: unknown or revoked token: ask an admin for a new one (`zun-controller token`)"
    assert bad.stderr == said + "\n"
