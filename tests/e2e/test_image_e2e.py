"""The controller image, built here with no registry (hack/build-image.sh: a local Python base
and a wheelhouse), runs `zun-controller --help` as a non-root user and runs the all-in-one
against a real etcd and the real Docker engine: its health endpoint answers and the engine it
was given becomes a Ready Host."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prom_bed import free_port
from testbed.docker import ensure_dockerd
from zun_bed import ZunBed

from zun_controller.models.host import Host
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
IMAGE = "zun-controller:e2e"
SOCKET = "/var/run/docker.sock"


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=False, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    ensure_dockerd()
    built = subprocess.run(
        [str(REPO / "hack" / "build-image.sh"), IMAGE],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    yield IMAGE
    docker("rmi", IMAGE)
    docker("image", "prune", "-f", "--filter", "label=zun.openstack.org/build-stage=true")


@pytest.mark.timeout(900)
def test_image_runs_help_as_non_root(image: str) -> None:
    helped = docker("run", "--rm", image, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "up" in helped.stdout and "run" in helped.stdout
    user = docker("run", "--rm", "--entrypoint", "id", image, "-u")
    assert user.stdout.strip() == "10001"


@pytest.mark.timeout(900)
async def test_image_runs_the_all_in_one_against_etcd(
    image: str, own_etcd: EtcdServer, tmp_path: Path
) -> None:
    port, name = free_port(), f"zun-e2e-{secrets.token_hex(3)}"
    group = str(os.stat(SOCKET).st_gid)
    run = ["run", "-d", "--name", name, "--network", "host", "--group-add", group]
    run += ["-v", f"{SOCKET}:{SOCKET}", image, "up", "--etcd", own_etcd.url]
    run += ["--health-port", str(port), "--log-json"]
    started = docker(*run)
    assert started.returncode == 0, started.stderr
    bed = ZunBed(own_etcd, tmp_path, ())
    try:
        await bed.until(lambda: _ok(f"http://127.0.0.1:{port}/readyz"), 60, "readyz")
        async with httpx.AsyncClient(timeout=5) as http:
            metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert "zun_records" in metrics.text

        async def local_ready() -> bool:
            host = await bed.store.get(Host, "local")
            return host.status.is_true("Ready")

        await bed.until(local_ready, 60, "Host local Ready")
    finally:
        logs = docker("logs", name).stderr
        docker("rm", "-f", name)
        await bed.close()
    assert '"msg":' in logs


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
