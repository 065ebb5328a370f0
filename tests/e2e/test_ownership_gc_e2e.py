"""Ownership end to end: `zun-controller up`, README's docker Application example applied and
deleted with `zunctl`, checked from the outside (the API's lists and the Docker API by Zun's
labels). Deleting the example in file order (the Cluster first) or in reverse leaves nothing;
`--cascade=orphan` leaves the Containers running without owners; a Foreground delete keeps
the Application, marked, until its Containers are gone; a record with a dangling ownerReference
written straight into etcd while no controller ran is collected once one starts."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from testbed.docker import HTTPD_V1, MAIN_SOCKET_URL, client, ensure_dockerd, ensure_test_images
from zun_bed import clean_engine
from zunctl_bed import AllInOne, zunctl

from zun_controller.models.base import LABEL_MANAGED_BY, LABEL_NAME, LABEL_PROJECT, MANAGED_BY
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.keys import record_key
from zun_controller.store.kv import Txn
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "examples" / "application-docker.yaml"
#: the issue's bound: nothing of the example is left this long after `zunctl delete -f`
GONE_WITHIN_S = 30.0
RUNNING_WITHIN_S = 150.0


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    ensure_test_images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def project(engine: docker.DockerClient) -> Iterator[str]:
    name = f"gc{secrets.token_hex(3)}"
    yield name
    clean_engine(engine, (name,))


@pytest.fixture
def up(own_etcd: EtcdServer, tmp_path: Path, project: str) -> Iterator[AllInOne]:
    """Stopped before `project` cleans the engine, so nothing is made again meanwhile."""
    aio = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL)
    yield aio
    aio.stop()


class User:
    """zunctl as a user in one project, and what the outside world shows of that project."""

    def __init__(self, up: AllInOne, project: str, engine: docker.DockerClient) -> None:
        self.up, self.project, self.engine = up, project, engine

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.up.token}"}

    def ctl(self, *args: str, timeout: float = 60) -> Any:
        return zunctl(self.up.url, self.up.token, self.project, *args, timeout=timeout)

    def records(self, kind: str) -> list[dict[str, Any]]:
        got = self.ctl("get", kind, "-o", "json")
        assert got.returncode == 0, got.stderr
        data = json.loads(got.stdout)
        items: list[dict[str, Any]] = data.get("items", [data]) if data else []
        return items

    def engine_containers(self) -> list[Any]:
        labels = [f"{LABEL_MANAGED_BY}={MANAGED_BY}", f"{LABEL_PROJECT}={self.project}"]
        return list(
            self.engine.containers.list(ignore_removed=True, all=True, filters={"label": labels})
        )

    def running_app(self) -> list[dict[str, Any]]:
        """Apply the example and wait for its two replicas and balancer to run."""
        applied = self.ctl("apply", "-f", str(EXAMPLE))
        assert applied.returncode == 0, applied.stderr

        def running() -> bool:
            ctrs = self.records("containers")
            up = [c for c in ctrs if (c.get("status") or {}).get("phase") == "Running"]
            return len(up) == 3 and len(self.engine_containers()) == 3

        until(running, RUNNING_WITHIN_S, lambda: f"{self.ctl('get', 'ctr').stdout}")
        return self.records("containers")

    def nothing_left(self) -> bool:
        return not self.records("containers") and not self.engine_containers()


def until(check: Callable[[], bool], within: float, show: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g}s: {show()}")
        time.sleep(0.5)


@pytest.fixture
def user(up: AllInOne, project: str, engine: docker.DockerClient) -> User:
    return User(up, project, engine)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("order", ["file", "reverse"])
def test_deleting_the_readme_example_in_any_order_leaves_no_container(
    user: User, tmp_path: Path, order: str
) -> None:
    made = user.running_app()
    assert all(c["metadata"]["ownerReferences"][0]["kind"] == "Application" for c in made)
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    if order == "reverse":
        docs.reverse()
    manifest = tmp_path / "example.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    deleted = user.ctl("delete", "-f", str(manifest))
    assert deleted.returncode == 0, deleted.stderr
    assert [line.split("/")[0] for line in deleted.stdout.splitlines()] == [
        f"{d['kind'].lower()}.zun.openstack.org" for d in docs
    ]
    until(user.nothing_left, GONE_WITHIN_S, lambda: user.ctl("get", "ctr").stdout)
    assert user.records("applications") == []


@pytest.mark.timeout(300)
def test_cascade_orphan_leaves_the_containers_running_without_owners(user: User) -> None:
    made = {c["metadata"]["name"]: c["metadata"]["uid"] for c in user.running_app()}
    engine_ids = sorted(c.id for c in user.engine_containers())
    gone = user.ctl("delete", "application", "shop", "--cascade=orphan", "--wait")
    assert gone.returncode == 0, gone.stderr
    time.sleep(5)  # the collector and the Application's finalizer had their chance
    left = user.records("containers")
    assert {c["metadata"]["name"]: c["metadata"]["uid"] for c in left} == made
    assert all(not c["metadata"].get("ownerReferences") for c in left)
    assert all("deletionTimestamp" not in c["metadata"] for c in left)
    running = user.engine_containers()
    assert sorted(c.id for c in running) == engine_ids
    assert all(c.status == "running" for c in running)


@pytest.mark.timeout(300)
def test_cascade_foreground_returns_only_once_the_containers_are_gone(user: User) -> None:
    """The DELETE answers with the Application marked and held by `foregroundDeletion`; the
    record goes only once its Containers are gone, from the records and from the engine."""
    user.running_app()
    started = time.monotonic()
    api = f"{user.up.url}/apis/zun.openstack.org/v1alpha1"
    url = f"{api}/projects/{user.project}/applications/shop"
    answer = httpx.delete(
        url, params={"propagationPolicy": "Foreground"}, headers=user.headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    meta = answer.json()["metadata"]
    assert meta.get("deletionTimestamp") and "foregroundDeletion" in meta["finalizers"], meta

    def app_gone() -> bool:
        return httpx.get(url, headers=user.headers, timeout=30).status_code == 404

    until(app_gone, GONE_WITHIN_S + 30, lambda: json.dumps(user.records("applications")))
    assert user.records("containers") == []
    assert user.engine_containers() == []
    assert time.monotonic() - started < GONE_WITHIN_S + 30


def test_a_bad_cascade_is_refused_and_deletes_nothing(user: User) -> None:
    applied = user.ctl("apply", "-f", str(EXAMPLE))
    assert applied.returncode == 0, applied.stderr
    bad = user.ctl("delete", "application", "shop", "--cascade=sideways")
    assert bad.returncode == 2
    assert "--cascade" in bad.stderr
    assert [a["metadata"]["name"] for a in user.records("applications")] == ["shop"]


# ------------------------------------------------------------------------------ straight into etcd


def _record(kind: str, name: str, project: str | None, spec: dict[str, Any], **meta: Any) -> Any:
    return parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, "project": project, **meta},
            "spec": spec,
        }
    )


async def _write_before_start(url: str, project: str) -> None:
    """A kept owner (a Secret) and its Container, and a Container whose owner never existed,
    written as JSON straight under their keys, as `etcdctl put` would."""
    owner = _record("Secret", "keeper", None, {"data": {"k": "v"}}, uid=str(uuid.uuid4()))
    ghost = {"kind": "Application", "name": "long-gone", "uid": str(uuid.uuid4())}
    kept = {"kind": "Secret", "name": "keeper", "uid": owner.metadata.uid}
    spec = {"image": HTTPD_V1, "resources": {"cpu": "100m", "memory": "32Mi"}}
    stray = _record("Container", "stray", project, spec, uid="u-stray", ownerReferences=[ghost])
    child = _record("Container", "child", project, spec, uid="u-child", ownerReferences=[kept])
    kv = EtcdKV.from_url(url)
    try:
        puts = [
            (record_key(o.KIND, o.name, o.project), json.dumps(o.to_wire()).encode())
            for o in (owner, stray, child)
        ]
        assert (await kv.commit(Txn(puts=puts))).succeeded
    finally:
        await kv.close()


async def _names(url: str, project: str) -> list[str]:
    kv = EtcdKV.from_url(url)
    try:
        items = (await RecordStore(kv).list(Container, project)).items
        return sorted(c.name for c in items)
    finally:
        await kv.close()


@pytest.mark.timeout(240)
def test_a_dangling_reference_written_while_no_controller_ran_is_collected(
    own_etcd: EtcdServer, tmp_path: Path, project: str, engine: docker.DockerClient
) -> None:
    asyncio.run(_write_before_start(own_etcd.url, project))
    aio = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL)
    try:
        user = User(aio, project, engine)
        until(
            lambda: asyncio.run(_names(own_etcd.url, project)) == ["child"],
            GONE_WITHIN_S,
            lambda: str(asyncio.run(_names(own_etcd.url, project))),
        )

        def no_stray() -> bool:
            return all(c.labels.get(LABEL_NAME) != "stray" for c in user.engine_containers())

        until(no_stray, GONE_WITHIN_S)
        time.sleep(3)
        assert asyncio.run(_names(own_etcd.url, project)) == ["child"]
    finally:
        aio.stop()
