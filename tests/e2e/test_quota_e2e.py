"""Quotas on real etcd through a running `zun-controller api`: 50 concurrent creates against a
limit of 10 admit exactly 10; deletes release usage; `zunctl describe quota` shows it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from zunctl_bed import ApiOnly, zunctl

from zun_controller.store.etcd import EtcdKV
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
P = "/apis/zun.openstack.org/v1alpha1"


@pytest.fixture
def api(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[ApiOnly]:
    server = ApiOnly(tmp_path, own_etcd.url)
    yield server
    server.stop()


def ctr(i: int) -> dict[str, object]:
    return {
        "kind": "Container",
        "metadata": {"name": f"c{i}"},
        "spec": {"image": "zun-test/httpd:v1", "resources": {"cpu": "100m"}},
    }


async def stored_containers(etcd: EtcdServer) -> int:
    kv = EtcdKV.from_url(etcd.url)
    try:
        return len((await kv.range("/zun/registry/containers/q/")).kvs)
    finally:
        await kv.close()


@pytest.mark.timeout(120)
async def test_fifty_concurrent_creates_against_ten_admit_ten(
    api: ApiOnly, own_etcd: EtcdServer
) -> None:
    headers = {"Authorization": f"Bearer {api.token}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as c:
        quota = {"kind": "Quota", "metadata": {"name": "q"}, "spec": {"limits": {"containers": 10}}}
        assert (await c.post(f"{P}/quotas", json=quota)).status_code == 201
        answers = await asyncio.gather(
            *(c.post(f"{P}/projects/q/containers", json=ctr(i)) for i in range(50))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [201] * 10 + [403] * 40
        assert all("exceeded quota" in r.json()["message"] for r in answers if r.status_code == 403)
        assert await stored_containers(own_etcd) == 10

        described = zunctl(api.url, api.token, "q", "describe", "quota", "q")
        assert described.returncode == 0, described.stderr
        assert "used:" in described.stdout and "containers: 10" in described.stdout
        assert "cpu: 1.0" in described.stdout

        admitted = [r.json()["metadata"]["name"] for r in answers if r.status_code == 201]
        for name in admitted[:4]:
            assert (await c.delete(f"{P}/projects/q/containers/{name}")).status_code == 200
        deadline = time.monotonic() + 20
        while (used := (await c.get(f"{P}/quotas/q")).json()["status"]["used"])["containers"] != 6:
            assert time.monotonic() < deadline, f"usage not released: {json.dumps(used)}"
            await asyncio.sleep(0.1)
        assert used["cpu"] == pytest.approx(0.6)
        again = await asyncio.gather(
            *(c.post(f"{P}/projects/q/containers", json=ctr(100 + i)) for i in range(8))
        )
        assert sorted(r.status_code for r in again) == [201] * 4 + [403] * 4
        assert await stored_containers(own_etcd) == 10
