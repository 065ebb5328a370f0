"""GitOps and the README's docker Application example end to end, as a user drives them:
`zun-controller up` (local repositories allowed), `zunctl`, a git repository on disk, and the
world checked through the API and the Docker API by Zun's labels.

- The example's Application committed to a repository and synced by a GitRepository runs (two
  replicas and the balancer); removing its file prunes every Container record and engine
  container within 30 s. (Its Cluster is cluster-scoped, so an admin applies it: a project's
  repository may not carry cluster-scoped kinds.)
- A file naming a record made by hand through `zunctl` is a conflict naming the owner (condition
  and Event) that changes nothing, and removing the file deletes nothing the repository did
  not make.
- `zunctl delete -f` of the example, the controller killed mid-delete and started again, then
  `zunctl apply -f`: the example runs again, with nothing left over or twice; and the same with
  the API up and the controller down at the apply, which waits for the records being deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from test_gitops_e2e import Repo
from test_ownership_gc_e2e import EXAMPLE, GONE_WITHIN_S, RUNNING_WITHIN_S, User, until
from testbed.docker import HTTPD_V1, HTTPD_V2, MAIN_SOCKET_URL, client, ensure_dockerd
from testbed.docker import ensure_test_images as images
from zun_bed import ZUN, Process, clean_engine
from zunctl_bed import ZUNCTL, AllInOne, ApiOnly

from zun_controller.errors import NotFoundError
from zun_controller.models.application import Application, Cluster
from zun_controller.models.base import Resource
from zun_controller.models.container import Container
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

pytestmark = pytest.mark.e2e
LOCAL_REPOSITORIES = ("--git-schemes", "https,ssh,file")


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    images(ensure_dockerd())
    return client(MAIN_SOCKET_URL)


@pytest.fixture
def project(engine: docker.DockerClient) -> Iterator[str]:
    name = f"gr{secrets.token_hex(3)}"
    yield name
    clean_engine(engine, (name,))


@pytest.fixture
def up(own_etcd: EtcdServer, tmp_path: Path, project: str) -> Iterator[AllInOne]:
    aio = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL, *LOCAL_REPOSITORIES)
    yield aio
    aio.stop()


@pytest.fixture
def user(up: AllInOne, project: str, engine: docker.DockerClient) -> User:
    return User(up, project, engine)


def example(kinds: set[str]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] in kinds]


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply_docs(user: User, tmp_path: Path, name: str, docs: list[dict[str, Any]]) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return ok(user.ctl("apply", "-f", str(path)))


def git_repository(user: User, tmp_path: Path, repo: Repo) -> None:
    doc = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "GitRepository",
           "metadata": {"name": "site"},
           "spec": {"url": f"file://{repo.path}", "intervalSeconds": 2}}  # fmt: skip
    apply_docs(user, tmp_path, "gitrepository", [doc])


def running_engine(user: User) -> list[Any]:
    return [c for c in user.engine_containers() if c.status == "running"]


def app_ready(user: User) -> bool:
    apps = user.records("applications")
    return len(apps) == 1 and (apps[0].get("status") or {}).get("phase") == "Ready"


def example_runs(user: User) -> bool:
    """The example's 3 Containers Running, 3 engine containers running, the Application Ready,
    and nothing else of the project on the engine."""
    ctrs = user.records("containers")
    up = [c for c in ctrs if (c.get("status") or {}).get("phase") == "Running"]
    every = user.engine_containers()
    return (
        len(ctrs) == len(up) == 3
        and len(every) == len(running_engine(user)) == 3
        and app_ready(user)
    )


def describe(user: User) -> str:
    site = user.ctl("describe", "gitrepository", "site").stdout
    return f"{user.ctl('get', 'ctr').stdout}{site}"


@pytest.mark.timeout(400)
def test_the_readme_example_synced_from_git_runs_and_its_removal_prunes_it(
    user: User, tmp_path: Path, project: str
) -> None:
    apply_docs(user, tmp_path, "cluster", example({"Cluster"}))
    repo = Repo(tmp_path / "repo", project)
    repo.commit({"shop.yaml": example({"Application"})})
    git_repository(user, tmp_path, repo)
    until(lambda: example_runs(user), RUNNING_WITHIN_S, lambda: describe(user))
    made = user.records("containers")
    assert all(c["metadata"]["ownerReferences"][0]["kind"] == "Application" for c in made)
    app = user.records("applications")[0]
    assert app["metadata"]["labels"]["zun.openstack.org/gitops-repository"] == "site"

    removed = repo.commit({"shop.yaml": None})
    until(user.nothing_left, GONE_WITHIN_S, lambda: describe(user))
    assert user.records("applications") == []
    status = user.records("gitrepositories")[0]["status"]
    assert status["lastAppliedCommit"] == removed and status["applied"] == []


def ctr_doc(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
            "metadata": {"name": name}, "spec": {"image": image}}  # fmt: skip


def conflict_message(user: User) -> str | None:
    got = user.records("gitrepositories")
    conds = (got[0].get("status") or {}).get("conditions", []) if got else []
    ready = next((c for c in conds if c["type"] == "Ready"), None)
    return ready["message"] if ready and ready["reason"] == "OwnershipConflict" else None


@pytest.mark.timeout(400)
def test_a_file_naming_a_hand_made_record_conflicts_and_changes_nothing(
    user: User, tmp_path: Path, project: str
) -> None:
    apply_docs(user, tmp_path, "web", [ctr_doc("web", HTTPD_V1)])

    def web_running() -> dict[str, Any] | None:
        got = [c for c in user.records("containers") if c["metadata"]["name"] == "web"]
        return got[0] if got and got[0].get("status", {}).get("phase") == "Running" else None

    until(lambda: web_running() is not None, RUNNING_WITHIN_S)
    hand = web_running()
    assert hand is not None
    engine_before = {c.id: c.attrs["Config"]["Image"] for c in user.engine_containers()}
    repo = Repo(tmp_path / "repo", project)
    repo.commit({"web.yaml": [ctr_doc("web", HTTPD_V2)], "api.yaml": [ctr_doc("api", HTTPD_V1)]})
    git_repository(user, tmp_path, repo)

    until(lambda: conflict_message(user) is not None, 60, lambda: describe(user))
    message = conflict_message(user)
    assert message == (
        f"containers/{project}/web: owned by no writer (made by hand through the API); "
        'not changed (annotation zun.openstack.org/adopt: "true" adopts it)'
    )
    events = json.loads(ok(user.ctl("get", "events", "-o", "json"))).get("items", [])
    warned = [e for e in events if e["spec"]["reason"] == "OwnershipConflict"]
    assert warned and warned[0]["spec"]["message"] == message, events

    def api_runs() -> bool:
        names = {c.labels["zun.openstack.org/name"] for c in running_engine(user)}
        return names == {"web", "api"}

    until(api_runs, RUNNING_WITHIN_S, lambda: describe(user))
    now = web_running()
    assert now is not None
    assert now["spec"] == hand["spec"] and now["metadata"].get("labels", {}) == {}
    assert now["metadata"]["generation"] == hand["metadata"]["generation"]
    assert now["status"]["containerId"] == hand["status"]["containerId"]
    web_engine = {c.id: c.attrs["Config"]["Image"] for c in user.engine_containers()
                  if c.labels["zun.openstack.org/name"] == "web"}  # fmt: skip
    assert web_engine == engine_before

    repo.commit({"web.yaml": None, "api.yaml": None})

    def only_web() -> bool:
        names = [c["metadata"]["name"] for c in user.records("containers")]
        return names == ["web"] and [c.id for c in user.engine_containers()] == list(web_engine)

    until(only_web, GONE_WITHIN_S, lambda: describe(user))
    time.sleep(5)  # a few more intervals: still nothing else deleted
    kept = web_running()
    assert kept is not None and kept["spec"] == hand["spec"]
    assert kept["metadata"]["generation"] == hand["metadata"]["generation"]
    assert kept["status"]["containerId"] == hand["status"]["containerId"]
    assert [c.id for c in running_engine(user)] == list(web_engine)


def zunctl_env(url: str, token: str, project: str) -> dict[str, str]:
    return {**os.environ, "ZUN_URL": url, "ZUN_TOKEN": token, "ZUN_PROJECT": project,
            "ZUN_CONFIG": "/nonexistent/zun.yaml"}  # fmt: skip


async def application_marked(url: str, project: str, within: float) -> bool:
    """Whether the example's Application got its deletionTimestamp (polled in etcd every few
    milliseconds) before it was gone or `within` seconds passed."""
    kv = EtcdKV.from_url(url)
    try:
        store, deadline = RecordStore(kv), time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                app = await store.get(Application, "shop", project)
            except NotFoundError:
                return False
            if app.metadata.deletion_timestamp:
                return True
            await asyncio.sleep(0.005)
        return False
    finally:
        await kv.close()


async def records_left(url: str, project: str) -> list[str]:
    """The example's records still in etcd (deleting or not), read with no controller up."""
    kv = EtcdKV.from_url(url)
    try:
        store = RecordStore(kv)
        found: list[Resource] = []
        for cls in (Application, Container):
            found += (await store.list(cls, project)).items
        found += [c for c in (await store.list(Cluster)).items if c.name == "local-docker"]
        return [obj.key for obj in found]
    finally:
        await kv.close()


@pytest.mark.timeout(500)
def test_apply_after_a_delete_interrupted_by_a_crash_converges(
    own_etcd: EtcdServer, tmp_path: Path, project: str, engine: docker.DockerClient
) -> None:
    first = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL)
    again: AllInOne | None = None
    try:
        user = User(first, project, engine)
        user.running_app()
        until(lambda: example_runs(user), RUNNING_WITHIN_S, lambda: describe(user))
        deleting = subprocess.Popen(
            [ZUNCTL, "delete", "-f", str(EXAMPLE)],
            env=zunctl_env(first.url, first.token, project),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        marked = asyncio.run(application_marked(own_etcd.url, project, 30.0))
        first.kill()  # within milliseconds of the Application's delete: its cascade has begun
        said = deleting.communicate(timeout=60)[0]
        assert marked, said
        left = asyncio.run(records_left(own_etcd.url, project)) + [
            c.name for c in user.engine_containers()
        ]
        assert left, "the delete had finished before the kill: nothing was interrupted"
        again = AllInOne(tmp_path, own_etcd.url, MAIN_SOCKET_URL, token=first.token)
        user.up = again
        applied = ok(user.ctl("apply", "-f", str(EXAMPLE)))
        until(lambda: example_runs(user), RUNNING_WITHIN_S, lambda: describe(user) + applied)
        time.sleep(10)  # the collector and the finalizers of the first delete had their turn
        assert example_runs(user), describe(user) + f"\nengine containers at the kill: {left}"
        names = sorted(c["metadata"]["name"] for c in user.records("containers"))
        assert len(set(names)) == 3 and "shop-lb" in names
        assert len(user.records("clusters")) == 1
    finally:
        for aio in (again, first):
            if aio is not None:
                aio.stop()


@pytest.mark.timeout(500)
def test_apply_while_the_controller_is_down_mid_delete_waits_and_converges(
    own_etcd: EtcdServer, tmp_path: Path, project: str, engine: docker.DockerClient
) -> None:
    """The API (`zun-controller api`) stays up while the controller (`run`) is killed in the
    middle of `zunctl delete -f`: the records are left being deleted. `zunctl apply -f` then
    waits for them to go (it would otherwise write to records about to vanish, or call them
    unchanged), and once a controller is back the example runs again."""
    api = ApiOnly(tmp_path, own_etcd.url)
    controller = Process(tmp_path, "controller")
    run = [ZUN, "run", "--etcd", own_etcd.url, "--health-port", "0", "--lease-ttl", "3"]
    env = zunctl_env(api.url, api.token, project)
    try:
        user = User(api, project, engine)  # type: ignore[arg-type]
        host = {"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Host",
                "metadata": {"name": "local"}, "spec": {"endpoint": MAIN_SOCKET_URL}}  # fmt: skip
        apply_docs(user, tmp_path, "host", [host])
        controller.launch(run)
        user.running_app()
        until(lambda: example_runs(user), RUNNING_WITHIN_S, lambda: describe(user))
        deleting = subprocess.Popen([ZUNCTL, "delete", "-f", str(EXAMPLE)], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        assert asyncio.run(application_marked(own_etcd.url, project, 30.0))
        controller.kill()
        said = deleting.communicate(timeout=60)[0]
        assert deleting.returncode == 0, said
        left = asyncio.run(records_left(own_etcd.url, project))
        assert f"applications/{project}/shop" in left, left

        applying = subprocess.Popen([ZUNCTL, "apply", "-f", str(EXAMPLE)], env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        time.sleep(3)
        assert applying.poll() is None, applying.communicate()[0]  # waiting, not "unchanged"
        controller.launch(run)
        applied = applying.communicate(timeout=150)[0]
        assert applying.returncode == 0, applied
        assert applied.splitlines() == [
            "cluster.zun.openstack.org/local-docker created",
            "application.zun.openstack.org/shop created",
        ]
        until(lambda: example_runs(user), RUNNING_WITHIN_S, lambda: describe(user) + applied)
        time.sleep(10)  # the collector and the finalizers of the first delete had their turn
        assert example_runs(user), describe(user)
        records = user.records("containers") + user.records("applications")
        assert all("deletionTimestamp" not in r["metadata"] for r in records)
    finally:
        controller.stop()
        api.stop()
