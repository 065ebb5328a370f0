"""The Docker test bed: engines start, the zun-test images serve, balance and fail as documented."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from testbed.docker import (
    DOCKERD_SH,
    HAPROXY,
    HAPROXY_CONFIG_DIR,
    HTTP_PORT,
    HTTPD_BROKEN,
    HTTPD_V1,
    HTTPD_V2,
    TESTBED_LABELS,
    client,
    ensure_dockerd,
    ensure_test_images,
    published_port,
    remove_labelled,
    start_extra_dockerd,
    stop_extra_dockerd,
    wait_http,
)

pytestmark = pytest.mark.e2e

#: This run's label on top of zun-testbed=1: teardown removes only what this run made, not the
#: containers of another test session using the same engine.
RUN_ID = uuid.uuid4().hex[:8]
LABELS = {**TESTBED_LABELS, "zun-testbed.run": RUN_ID}
EXTRA_ENGINE = "dtb"
LOOPBACK_PORT = {f"{HTTP_PORT}/tcp": ("127.0.0.1", None)}  # random free host port


@pytest.fixture(scope="module")
def main_engine() -> Iterator[docker.DockerClient]:
    url = ensure_dockerd()
    ensure_test_images(url)
    docker_client = client(url)
    yield docker_client
    remove_labelled(docker_client, LABELS)
    docker_client.close()


@pytest.fixture(scope="module")
def extra_engine() -> Iterator[docker.DockerClient]:
    url = start_extra_dockerd(EXTRA_ENGINE)
    try:
        ensure_test_images(url)
        docker_client = client(url)
        try:
            yield docker_client
        finally:
            remove_labelled(docker_client, LABELS)
            docker_client.close()
    finally:
        stop_extra_dockerd(EXTRA_ENGINE)


def _name(what: str) -> str:
    return f"zun-testbed-{RUN_ID}-{what}"


def _run_httpd(engine: docker.DockerClient, image: str, what: str, **kwargs: Any) -> Any:
    return engine.containers.run(image, name=_name(what), detach=True, labels=LABELS, **kwargs)


def test_httpd_v1_serves_on_a_loopback_port_and_stops_fast(
    main_engine: docker.DockerClient,
) -> None:
    web = _run_httpd(main_engine, HTTPD_V1, "web", ports=LOOPBACK_PORT)
    port = published_port(web)
    body = wait_http(f"http://127.0.0.1:{port}/").text
    assert "v1" in body
    assert f"host={web.id[:12]}" in body
    assert wait_http(f"http://127.0.0.1:{port}/healthz").text.strip() == "ok"
    assert wait_http(f"http://127.0.0.1:{port}/version").text.strip() == "v1"

    # The start script traps SIGTERM: stop does not wait for the SIGKILL after the grace period.
    started = time.monotonic()
    web.stop(timeout=10)
    assert time.monotonic() - started < 5
    web.reload()
    assert web.attrs["State"]["ExitCode"] == 0


def test_extra_engine_is_a_second_host(
    main_engine: docker.DockerClient, extra_engine: docker.DockerClient
) -> None:
    assert extra_engine.info()["DockerRootDir"] != main_engine.info()["DockerRootDir"]

    web = _run_httpd(extra_engine, HTTPD_V1, "extra-web", ports=LOOPBACK_PORT)
    port = published_port(web)
    assert "v1" in wait_http(f"http://127.0.0.1:{port}/").text
    assert not main_engine.containers.list(ignore_removed=True, all=True, filters={"id": web.id})

    # Containers of the extra engine reach each other by name on a user-defined network (its
    # bridges are not covered by the main engine's FORWARD rules; dockerd.sh adds one).
    net = extra_engine.networks.create(_name("extra-net"), labels=LABELS)
    peer = _run_httpd(extra_engine, HTTPD_V2, "extra-peer", network=net.name)
    net.connect(web)
    url = f"http://{peer.name}:{HTTP_PORT}/"
    deadline = time.monotonic() + 20
    while True:
        # busybox 1.35's wget has no -T and segfaults when given one: bound it with timeout.
        code, out = web.exec_run(["timeout", "5", "wget", "-q", "-O", "-", url])
        if code == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 0, out
    assert b"v2" in out


def _haproxy_config(servers: dict[str, str]) -> str:
    lines = [
        "global",
        "    maxconn 256",
        "defaults",
        "    mode http",
        "    option redispatch",
        "    retries 2",
        "    timeout connect 2s",
        "    timeout client 10s",
        "    timeout server 10s",
        "frontend main",
        f"    bind :{HTTP_PORT}",
        "    default_backend app",
        "backend app",
        "    balance roundrobin",
    ]
    lines += [f"    server {name} {addr} check inter 1s" for name, addr in servers.items()]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a bind-mounted *directory* sees the new file; a mounted file would not


def test_haproxy_balances_two_backends_and_reloads(
    main_engine: docker.DockerClient, tmp_path: Path
) -> None:
    net = main_engine.networks.create(_name("lb-net"), labels=LABELS)
    v1 = _run_httpd(main_engine, HTTPD_V1, "lb-v1", network=net.name)
    v2 = _run_httpd(main_engine, HTTPD_V2, "lb-v2", network=net.name)
    conf_dir = tmp_path / "haproxy"
    conf_dir.mkdir()
    conf = conf_dir / "haproxy.cfg"
    # Backends by container name: haproxy resolves them through Docker's embedded DNS.
    _write_atomically(
        conf,
        _haproxy_config({"v1": f"{v1.name}:{HTTP_PORT}", "v2": f"{v2.name}:{HTTP_PORT}"}),
    )
    lb = main_engine.containers.run(
        HAPROXY,
        name=_name("lb"),
        detach=True,
        labels=LABELS,
        network=net.name,
        ports=LOOPBACK_PORT,
        volumes={str(conf_dir): {"bind": HAPROXY_CONFIG_DIR, "mode": "ro"}},
    )
    port = published_port(lb)
    url = f"http://127.0.0.1:{port}/"

    seen: set[str] = set()
    deadline = time.monotonic() + 20
    while seen != {"v1", "v2"} and time.monotonic() < deadline:
        body = wait_http(url).text
        seen |= {v for v in ("v1", "v2") if f"httpd {v} " in body}
    assert seen == {"v1", "v2"}, lb.logs()

    # Master-worker mode: a new config file plus SIGUSR2 reloads without a restart.
    _write_atomically(conf, _haproxy_config({"v2": f"{v2.name}:{HTTP_PORT}"}))
    lb.kill(signal="SIGUSR2")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        bodies = [wait_http(url).text for _ in range(4)]
        if all("httpd v2 " in b for b in bodies):
            break
        time.sleep(0.2)
    assert all("httpd v2 " in b for b in bodies), bodies
    lb.reload()
    assert lb.status == "running"
    assert lb.attrs["RestartCount"] == 0


def test_broken_httpd_exits_non_zero(main_engine: docker.DockerClient) -> None:
    broken = _run_httpd(main_engine, HTTPD_BROKEN, "broken")
    result = broken.wait(timeout=30)
    assert result["StatusCode"] != 0
    assert b"broken" in broken.logs()


def test_sweep_deletes_only_veth_pairs_no_container_uses() -> None:
    """dockerd leaks veth pairs with both ends on the host when restarted with hundreds of
    containers; a bridge full of them (1024 ports) makes every start fail. The sweep deletes
    such pairs and keeps a pair whose other end is in a network namespace (a container's)."""
    tag = uuid.uuid4().hex[:6]
    bridge, netns = f"zbr{tag}", f"zns{tag}"
    leaked, used = (f"zl{tag}", f"zm{tag}"), (f"zu{tag}", f"zv{tag}")

    def ip(*args: str, check: bool = True) -> None:
        subprocess.run(["ip", *args], check=check, capture_output=True, timeout=10)

    def exists(dev: str) -> bool:
        return Path(f"/sys/class/net/{dev}").exists()

    ip("link", "add", bridge, "type", "bridge")
    ip("netns", "add", netns)
    try:
        for host_end, peer in (leaked, used):
            ip("link", "add", host_end, "type", "veth", "peer", "name", peer)
            ip("link", "set", host_end, "master", bridge)
        ip("link", "set", used[1], "netns", netns)
        cmd = ["bash", str(DOCKERD_SH), "sweep-veths"]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert not exists(leaked[0]) and not exists(leaked[1])
        assert exists(used[0]), "a pair with its other end in a namespace must stay"
    finally:
        for dev in (used[0], leaked[0], bridge):
            ip("link", "delete", dev, check=False)
        ip("netns", "delete", netns, check=False)
