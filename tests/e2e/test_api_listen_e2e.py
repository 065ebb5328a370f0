"""`zun-controller api --listen-address`: loopback only by default; every interface when asked
(a pod behind a Service). Checked from the kernel's table of listening sockets, and served on
loopback either way."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from zun_bed import ZUN

from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) with a LISTEN socket on `port`."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(address)
    return found


@pytest.mark.parametrize(
    ("args", "address"), [([], "0100007F"), (["--listen-address", "0.0.0.0"], "00000000")]
)
def test_api_listens_where_asked(
    etcd_server: EtcdServer, tmp_path: Path, args: list[str], address: str
) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    cmd = [ZUN, "api", "--etcd", etcd_server.url, "--api-port", str(port), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "zun-controller api is up" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert listening(port) == {address}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
