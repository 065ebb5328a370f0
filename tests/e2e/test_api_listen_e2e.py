"""`zun-controller api --listen-address`: loopback only by default; every interface when asked
(a pod behind a Service). Checked from the kernel's table of listening sockets, and served on
loopback either way."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from zunctl_bed import ApiOnly

from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e


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
    api = ApiOnly(tmp_path, etcd_server.url, *args)
    try:
        assert listening(api.port) == {address}
        assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200
    finally:
        api.stop()
