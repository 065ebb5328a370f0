"""Docker engines and test images for e2e tests.

`ensure_dockerd()` starts (or finds) the machine's main engine with ``hack/dockerd.sh start``;
`start_extra_dockerd(name)` starts a second engine with its own socket, state and bridge, so two
"hosts" can be tested on one machine; `ensure_test_images(url)` builds the ``zun-test/*`` images
into an engine with ``hack/images.sh`` (a fast no-op when they are up to date). Everything a test
creates should carry the label ``zun-testbed=1`` (`TESTBED_LABELS`) so `remove_labelled()` can
clean up after it. See docs/docker-testbed.md.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker  # the SDK: absolute import, this module is testbed.docker
import docker.errors
import httpx

REPO = Path(__file__).resolve().parents[3]
DOCKERD_SH = REPO / "hack" / "dockerd.sh"
IMAGES_SH = REPO / "hack" / "images.sh"

MAIN_SOCKET_URL = "unix:///var/run/docker.sock"

HTTPD_V1 = "zun-test/httpd:v1"
HTTPD_V2 = "zun-test/httpd:v2"
HTTPD_BROKEN = "zun-test/httpd:broken"
HAPROXY = "zun-test/haproxy:2.6"
#: Port the httpd and haproxy images listen on inside the container.
HTTP_PORT = 8080
#: Where the haproxy image reads its configuration (bind-mount the directory, not the file).
HAPROXY_CONFIG_DIR = "/usr/local/etc/haproxy"

TESTBED_LABEL = "zun-testbed"
TESTBED_LABELS: dict[str, str] = {TESTBED_LABEL: "1"}

#: dockerd answers in ~0.3-1 s here; the bound covers a loaded machine and a first apt install.
START_TIMEOUT_S = 180.0
#: All four images build in ~2-8 s; the bound covers a loaded machine.
IMAGES_TIMEOUT_S = 300.0


class DockerTestbedError(RuntimeError):
    """An engine could not be started or stopped, or the images not built (with the log tail)."""


def _run_script(
    cmd: Sequence[str], timeout: float, extra_env: Mapping[str, str] | None = None
) -> str:
    env = dict(os.environ)
    if extra_env:
        env.update(extra_env)
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise DockerTestbedError(f"{' '.join(cmd)} timed out after {timeout} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        raise DockerTestbedError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return proc.stdout


def _socket_url(stdout: str, cmd: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith("unix://")]
    if not lines:
        raise DockerTestbedError(f"{cmd} printed no socket URL: {stdout!r}")
    return lines[-1]


def ensure_dockerd(timeout: float = START_TIMEOUT_S) -> str:
    """Start the main engine unless one answers already; return its URL (unix://...)."""
    return _socket_url(_run_script([str(DOCKERD_SH), "start"], timeout), "dockerd.sh start")


def start_extra_dockerd(name: str, timeout: float = START_TIMEOUT_S) -> str:
    """Start (idempotently) the extra engine NAME ([a-z0-9-], at most 11 chars); return its URL.

    It has its own socket (/run/zun-dockerd-NAME.sock), data-root, bridge and address range; it
    starts with no images (call `ensure_test_images(url)`). Published ports work on 127.0.0.1.
    """
    return _socket_url(
        _run_script([str(DOCKERD_SH), "start", name], timeout), f"dockerd.sh start {name}"
    )


def stop_extra_dockerd(name: str, timeout: float = START_TIMEOUT_S) -> None:
    """Stop the extra engine NAME and remove its state, bridges and firewall rule (idempotent)."""
    _run_script([str(DOCKERD_SH), "stop", name], timeout)


@contextlib.contextmanager
def extra_engine_with_images(name: str) -> Iterator[str]:
    """The main engine running and the extra engine NAME started with the test images; NAME is
    stopped and its state removed afterwards. Yields its URL."""
    ensure_dockerd()
    url = start_extra_dockerd(name)
    try:
        ensure_test_images(url)
        yield url
    finally:
        stop_extra_dockerd(name)


def ensure_test_images(base_url: str | None = None, timeout: float = IMAGES_TIMEOUT_S) -> None:
    """Build the zun-test/* images into the engine at base_url (default: the main engine)."""
    _run_script([str(IMAGES_SH)], timeout, {"DOCKER_HOST": base_url or MAIN_SOCKET_URL})


def client(base_url: str = MAIN_SOCKET_URL, timeout: float = 60.0) -> docker.DockerClient:
    """A docker SDK client for the engine at base_url (API version negotiated: engine 20.10)."""
    return docker.DockerClient(base_url=base_url, timeout=int(timeout))


def published_port(container: Any, container_port: str = f"{HTTP_PORT}/tcp") -> int:
    """The host port docker picked for container_port (the container must be running)."""
    deadline = time.monotonic() + 10
    while True:
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(container_port)
        if bindings:
            return int(bindings[0]["HostPort"])
        if time.monotonic() > deadline:
            raise DockerTestbedError(f"{container.name}: {container_port} is not published")
        time.sleep(0.1)


def wait_http(url: str, timeout: float = 20.0, expect_status: int = 200) -> httpx.Response:
    """GET url until it answers expect_status (bounded); return the response."""
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while True:
        try:
            resp = httpx.get(url, timeout=2.0)
            if resp.status_code == expect_status:
                return resp
            last = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise DockerTestbedError(f"GET {url}: no {expect_status} within {timeout} s ({last})")
        time.sleep(0.1)


def remove_labelled(
    docker_client: docker.DockerClient, labels: Mapping[str, str] = TESTBED_LABELS
) -> None:
    """Force-remove the containers, then the networks, that carry all of labels."""
    filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
    for container in docker_client.containers.list(
        ignore_removed=True, all=True, sparse=True, filters=filters
    ):
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise
    for network in docker_client.networks.list(filters=filters):
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
