"""The engine against a real etcd and real processes: crash, takeover, restarts, compaction."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from zun_controller.engine.informer import Cached, Informer
from zun_controller.errors import TransientError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
HARNESS = Path(__file__).with_name("stamp_manager.py")


def must(obj: Container | None) -> Container:
    assert obj is not None
    return obj


def container(name: str) -> Container:
    obj = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Container",
            "metadata": {"name": name, "project": "demo"},
            "spec": {"image": "busybox"},
        }
    )
    assert isinstance(obj, Container)
    return obj


@pytest.fixture
async def store(own_etcd: EtcdServer) -> AsyncIterator[RecordStore]:
    kv = EtcdKV.from_url(own_etcd.url)
    yield RecordStore(kv)
    await kv.close()


class Managers:
    """Manager processes running tests/e2e/stamp_manager.py, all logging to one action log."""

    def __init__(self, etcd: EtcdServer, log: Path) -> None:
        self.etcd, self.log = etcd, log
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, identity: str, delay: float = 0.0) -> None:
        cmd = [sys.executable, str(HARNESS), "--etcd", self.etcd.url, "--identity", identity]
        cmd += ["--log", str(self.log), "--delay", str(delay)]
        self.procs[identity] = subprocess.Popen(cmd)

    def signal(self, identity: str, signum: int) -> None:
        proc = self.procs[identity]
        proc.send_signal(signum)
        proc.wait(30)

    def actions(self) -> list[tuple[float, str, str, str]]:
        if not self.log.exists():
            return []
        rows = [line.split() for line in self.log.read_text().splitlines()]
        return [(float(t), who, key, what) for t, who, key, what in rows]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def managers(own_etcd: EtcdServer, tmp_path: Path) -> Iterator[Managers]:
    group = Managers(own_etcd, tmp_path / "actions.log")
    yield group
    group.stop_all()


async def create_many(store: RecordStore, names: list[str]) -> None:
    for i in range(0, len(names), 64):
        await asyncio.gather(*(store.create(container(n)) for n in names[i : i + 64]))


async def stamped_by(store: RecordStore) -> dict[str, str]:
    items = (await store.list(Container, "demo")).items
    out = {}
    for obj in items:
        cond = obj.status.condition("Stamped")
        if cond and obj.status.observed_generation == obj.metadata.generation:
            out[obj.name] = cond.message
    return out


async def wait_stamped(store: RecordStore, count: int, within: float) -> dict[str, str]:
    async with asyncio.timeout(within):
        while len(done := await stamped_by(store)) < count:
            await asyncio.sleep(0.2)
    return done


@pytest.mark.timeout(180)
async def test_sigkilled_manager_is_finished_by_another_none_missed(
    store: RecordStore, managers: Managers
) -> None:
    names = [f"r-{i:04d}" for i in range(1000)]
    await create_many(store, names)
    managers.start("first", delay=0.01)
    await wait_stamped(store, 200, within=60)
    managers.signal("first", signal.SIGKILL)
    managers.start("second")
    done = await wait_stamped(store, 1000, within=120)
    assert sorted(done) == names
    by = {who: sum(1 for w in done.values() if w == who) for who in ("first", "second")}
    assert by["first"] >= 200 and by["second"] > 0
    assert by["first"] + by["second"] == 1000


@pytest.mark.timeout(180)
async def test_two_managers_never_reconcile_at_once(store: RecordStore, managers: Managers) -> None:
    managers.start("a", delay=0.002)
    managers.start("b", delay=0.002)
    await create_many(store, [f"x-{i:03d}" for i in range(300)])
    first_round = await wait_stamped(store, 300, within=60)
    leaders = set(first_round.values())
    assert len(leaders) == 1
    leader = leaders.pop()
    standby = "b" if leader == "a" else "a"
    managers.signal(leader, signal.SIGTERM)
    await create_many(store, [f"y-{i:03d}" for i in range(100)])
    second_round = await wait_stamped(store, 400, within=60)
    assert {second_round[f"y-{i:03d}"] for i in range(100)} == {standby}
    actions = managers.actions()
    last_of_leader = max(t for t, who, _, _ in actions if who == leader)
    first_of_standby = min(t for t, who, _, _ in actions if who == standby)
    assert last_of_leader < first_of_standby, "two managers acted at the same time"


async def put_retrying(store: RecordStore, obj: Container) -> None:
    async with asyncio.timeout(30):
        while True:
            try:
                current = await store.get(Container, obj.name, "demo")
                current.metadata.labels = obj.metadata.labels
                await store.update(current)
                return
            except TransientError:
                await asyncio.sleep(0.1)


@pytest.mark.timeout(120)
async def test_etcd_restart_and_compaction_during_watch_lose_no_change(
    own_etcd: EtcdServer,
) -> None:
    kv = EtcdKV.from_url(own_etcd.url)
    # the watch waits 4 s before resuming: time enough to change and compact etcd meanwhile
    store = RecordStore(kv, watch_retry=(4.0, 4.0))
    informer = Informer(store, Container, metrics=(metrics := Metrics()))
    deleted: set[str] = set()

    def on_change(key: str, old: Cached | None, new: Cached | None) -> None:
        if new is None:
            deleted.add(key)

    informer.add_handler(on_change)
    names = [f"w-{i:02d}" for i in range(50)]
    await create_many(store, names)
    task = asyncio.create_task(informer.run())
    await informer.synced.wait()

    async def update_all(round_: int) -> None:
        for name in names[10:]:
            obj = container(name)
            obj.metadata.labels = {"round": str(round_)}
            await put_retrying(store, obj)

    async def converged() -> None:
        kvs, _ = await store.list_raw("/zun/registry/containers/")
        expected = {k.key.removeprefix("/zun/registry/"): k.mod_revision for k in kvs}
        async with asyncio.timeout(30):
            while {
                k: c.mod_revision for k in informer.list_keys() if (c := informer.raw(k))
            } != expected:
                await asyncio.sleep(0.1)

    await update_all(0)
    await asyncio.to_thread(own_etcd.restart)
    await update_all(1)
    for name in names[:10]:
        await store.delete(Container, name, "demo")
    await kv.compact(await kv.revision())
    await converged()
    assert deleted == {f"containers/demo/{n}" for n in names[:10]}
    relists = {"kind": "Container", "reason": "compacted"}
    assert metrics.registry.get_sample_value("zun_informer_relists_total", relists) == 1

    await asyncio.to_thread(own_etcd.restart)
    await update_all(2)
    await converged()
    assert all(
        must(informer.get(f"containers/demo/{n}")).metadata.labels == {"round": "2"}
        for n in names[10:]
    )
    assert metrics.registry.get_sample_value("zun_informer_relists_total", relists) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kv.close()
