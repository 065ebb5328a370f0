"""Fixtures shared by unit and e2e tests: a real etcd started for the session, and KV stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from zun_controller.store.etcd import EtcdKV
from zun_controller.store.kv import KV
from zun_controller.store.memory import MemoryKV
from zun_controller.store.server import EtcdServer


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd for the session, on free loopback ports, in a throwaway data dir."""
    server = EtcdServer(tmp_path_factory.mktemp("etcd") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd of the test's own, for tests that restart, pause or compact it."""
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def etcd_kv(etcd_server: EtcdServer) -> AsyncIterator[EtcdKV]:
    kv = EtcdKV.from_url(etcd_server.url)
    await kv.delete_prefix("/")
    yield kv
    await kv.close()


@pytest.fixture(params=["memory", pytest.param("etcd", marks=pytest.mark.e2e)])
async def kv(request: pytest.FixtureRequest) -> AsyncIterator[KV]:
    """The KV port, once in memory and once on real etcd: the contract suite runs on both."""
    if request.param == "memory":
        yield MemoryKV()
        return
    server: EtcdServer = request.getfixturevalue("etcd_server")
    etcd = EtcdKV.from_url(server.url)
    await etcd.delete_prefix("/")
    yield etcd
    await etcd.close()
