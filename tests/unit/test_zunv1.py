"""The Zun v1 API on the in-memory store: version documents, microversions, shapes, the
record each call writes, Zun's error body and the 409 rules, auth and no-auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.api.zunv1 import ZunV1Settings
from zun_controller.drivers.runtime.base import ContainerState, ContainerStats, ExecResult
from zun_controller.drivers.runtime.base import ContainerStatus as EngineStatus
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.reconcilers.container_state import should_restart
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore

V = {"OpenStack-API-Version": "container 1.40"}


class FakeIO:
    """`ContainerIO` answering from memory: logs are fixed text, exec echoes its command (`ps`
    answers as busybox's, listing itself, while `has_ps`), stats are fixed numbers."""

    has_ps = True

    async def logs(self, container: Container, *, tail: int | None, follow: bool):
        lines = [b"one\n", b"two\n", b"three\n"]
        for line in lines[-tail:] if tail else lines:
            yield line

    async def exec(
        self, container: Container, command: list[str], *, max_output: int, max_seconds: float
    ) -> ExecResult:
        if command[0] == "ps" and self.has_ps:
            table = "PID   USER     TIME  COMMAND\n    1 root      0:00 httpd -f -p 8080\n"
            return ExecResult(0, f"{table}    9 root      0:00 {' '.join(command)}\n".encode())
        out = " ".join(command).encode()
        if len(out) > max_output:
            return ExecResult(-1, out[:max_output], truncated=True)
        return ExecResult(3, out)

    async def stats(self, container: Container) -> ContainerStats:
        return ContainerStats(12.345, 96 * 2**20, 384 * 2**20, 4096, 512, 1500, 700)


class Bed:
    def __init__(self, noauth: bool) -> None:
        self.kv = MemoryKV()
        self.store = RecordStore(self.kv)
        settings = ZunV1Settings(noauth=noauth, project="demo")
        self.io = FakeIO()
        self.app = create_app(self.store, self.io, release=False, zun_v1=settings)

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://localhost",
            headers={**V, **headers},
        )

    async def converge(self, name: str, phase: str, cid: str | None = "c0ffee") -> None:
        """What the controller would write once the engine container is in `phase`."""
        obj = await self.store.get(Container, name, "demo")
        obj.status.phase, obj.status.container_id, obj.status.host = phase, cid, "local"
        obj.status.ips = {"zun-demo": "10.0.0.2"}
        await self.store.update_status(obj)


@pytest.fixture
async def bed() -> AsyncIterator[Bed]:
    yield Bed(noauth=True)


async def _run(c: httpx.AsyncClient, name: str = "web", run: bool = True, **body: Any) -> Any:
    r = await c.post(
        "/v1/containers", params={"run": "true"} if run else {}, json={"name": name, **body}
    )
    assert r.status_code == 202, r.text
    return r


async def test_version_documents_and_microversions(bed: Bed) -> None:
    async with bed.client() as c:
        root = (await c.get("/")).json()
        (v1,) = root["versions"]
        assert (v1["id"], v1["min_version"], v1["max_version"], v1["status"]) == (
            "v1", "1.1", "1.40", "CURRENT"
        )  # fmt: skip
        assert v1["links"][0]["href"] == "http://localhost/v1/"
        r = await c.get("/v1", headers={"OpenStack-API-Version": "container 1.12"})
        assert r.json()["id"] == "v1"
        assert r.headers["OpenStack-API-Version"] == "container 1.12"
        assert "OpenStack-API-Version" in r.headers["Vary"]
        r = await c.get("/v1/containers", headers={"OpenStack-API-Version": "container latest"})
        assert r.headers["OpenStack-API-Version"] == "container 1.40"
        r = await c.get("/v1/containers", headers={"OpenStack-API-Version": ""})
        assert r.headers["OpenStack-API-Version"] == "container 1.1"
        for bad, code in [("container 1.41", 406), ("container 2.0", 406), ("container x", 400)]:
            r = await c.get("/v1/containers", headers={"OpenStack-API-Version": bad})
            assert r.status_code == code, bad
            (err,) = r.json()["errors"]
            assert err["status"] == code and err["title"] and err["request_id"].startswith("req-")


async def test_run_writes_a_running_record_and_shows_zuns_shape(bed: Bed) -> None:
    async with bed.client() as c:
        body: dict[str, Any] = {"image": "zun-test/httpd:v1", "memory": "64", "cpu": 0.5,
                "environment": {"A": "1"}, "command": ["sh", "-c", "sleep 1"],
                "exposed_ports": {"8080/tcp": {}}, "labels": {"tier": "web"}}  # fmt: skip
        r = await _run(c, **body)
        shown = r.json()
        assert r.headers["Location"].endswith(f"/v1/containers/{shown['uuid']}")
        obj = await bed.store.get(Container, "web", "demo")
        assert obj.metadata.uid == shown["uuid"] and obj.spec.state == "Running"
        assert obj.spec.resources.memory == 64 * 2**20 and obj.spec.args == ["sh", "-c", "sleep 1"]
        assert obj.spec.restart_policy == "Never" and obj.spec.ports[0].container_port == 8080
        assert shown["status"] == "Creating" and shown["task_state"] == "container_creating"
        await bed.converge("web", "Running")
        got = (await c.get("/v1/containers/web")).json()
        assert (got["status"], got["task_state"], got["memory"]) == ("Running", None, "64M")
        assert got["addresses"]["zun-demo"][0]["addr"] == "10.0.0.2"
        assert got == (await c.get(f"/v1/containers/{shown['uuid']}")).json()
        assert got["environment"] == {"A": "1"} and got["labels"] == {"tier": "web"}


async def test_create_without_run_is_created_and_start_runs_it(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, run=False, image="x")
        assert (await bed.store.get(Container, "web", "demo")).spec.state == "Stopped"
        await bed.converge("web", "Creating")
        assert (await c.get("/v1/containers/web")).json()["status"] == "Created"
        assert (await c.post("/v1/containers/web/start")).status_code == 202
        assert (await bed.store.get(Container, "web", "demo")).spec.state == "Running"
        shown = (await c.get("/v1/containers/web")).json()
        assert shown["task_state"] == "container_starting"


async def test_actions_write_the_spec_and_409_outside_their_statuses(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, image="x")
        await bed.converge("web", "Running")
        r = await c.post("/v1/containers/web/unpause")
        assert r.status_code == 409
        (err,) = r.json()["errors"]
        assert err["code"] == "zun.common.exception.InvalidStateException"
        assert "in Running state" in err["detail"]
        for action, state, phase in [("pause", "Paused", "Paused"),
                                     ("unpause", "Running", "Running"),
                                     ("stop", "Stopped", "Stopped")]:  # fmt: skip
            assert (await c.post(f"/v1/containers/web/{action}")).status_code == 202, action
            assert (await bed.store.get(Container, "web", "demo")).spec.state == state
            await bed.converge("web", phase)
        assert (await c.post("/v1/containers/web/pause")).status_code == 409
        assert (await c.post("/v1/containers/web/stop")).status_code == 409


async def test_reboot_asks_for_one_restart_newer_than_any_before(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, image="x")
        await bed.converge("web", "Running")
        r = await c.post("/v1/containers/web/reboot", params={"timeout": 5})
        assert r.status_code == 202
        obj = await bed.store.get(Container, "web", "demo")
        first = obj.spec.restarted_at
        assert first is not None and obj.spec.state == "Running" and obj.restart_pending()
        assert (await c.get("/v1/containers/web")).json()["task_state"] == "container_rebooting"
        # the controller restarted it and recorded so; a server whose clock is ahead wrote it
        obj.status.restarted_at = first + timedelta(hours=1)
        await bed.store.update_status(obj)
        assert (await c.get("/v1/containers/web")).json()["task_state"] is None
        await bed.converge("web", "Stopped")
        assert (await c.post("/v1/containers/web/reboot")).status_code == 202
        obj = await bed.store.get(Container, "web", "demo")
        assert obj.spec.state == "Running" and obj.restart_pending()
        await bed.converge("web", "Paused")
        r = await c.post("/v1/containers/web/reboot")
        assert r.status_code == 409 and "Cannot reboot container" in r.json()["errors"][0]["title"]


async def test_rebuild_asks_for_a_recreate_with_or_without_a_new_image(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, image="x")
        await bed.converge("web", "Running")
        assert (await c.post("/v1/containers/web/rebuild")).status_code == 202
        obj = await bed.store.get(Container, "web", "demo")
        first = obj.spec.rebuilt_at
        assert first is not None and (obj.spec.image, obj.spec.state) == ("x", "Running")
        r = await c.post("/v1/containers/web/rebuild", params={"image": "y"})
        assert r.status_code == 202
        obj = await bed.store.get(Container, "web", "demo")
        assert obj.spec.image == "y" and obj.spec.rebuilt_at is not None
        assert obj.spec.rebuilt_at > first
        await bed.converge("web", "Paused")
        r = await c.post("/v1/containers/web/rebuild")
        assert r.status_code == 409 and "Cannot rebuild container" in r.json()["errors"][0]["title"]


async def test_delete_needs_stop_or_force_while_running(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, image="x")
        await bed.converge("web", "Running")
        assert (await c.delete("/v1/containers/web")).status_code == 409
        r = await c.delete("/v1/containers/web", params={"stop": "True"})
        assert r.status_code == 204
        assert (await c.get("/v1/containers/web")).status_code == 404
        assert (await bed.store.list(Container, "demo")).items == []


async def test_delete_with_force_in_any_status(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, "new", image="x")  # Creating: not deletable without force
        r = await c.delete("/v1/containers/new")
        assert r.status_code == 409 and "in Creating state" in r.json()["errors"][0]["title"]
        assert (await c.delete("/v1/containers/new", params={"force": "true"})).status_code == 204
        assert (await c.get("/v1/containers/new")).status_code == 404
        await _run(c, image="x")
        await bed.converge("web", "Running")
        obj = await bed.store.get(Container, "web", "demo")
        obj.metadata.finalizers = ["zun.openstack.org/runtime"]  # the controller's, as it runs
        await bed.store.update(obj)
        assert (await c.delete("/v1/containers/web", params={"force": "True"})).status_code == 204
        assert (await c.get("/v1/containers/web")).json()["status"] == "Deleting"
        assert (await c.delete("/v1/containers/web")).status_code == 409
        assert (await c.delete("/v1/containers/web", params={"force": "true"})).status_code == 204


async def test_list_pages_with_limit_and_marker(bed: Bed) -> None:
    async with bed.client() as c:
        for i in range(3):
            await _run(c, f"c{i}", image="x")
        first = (await c.get("/v1/containers", params={"limit": 2})).json()
        assert [x["name"] for x in first["containers"]] == ["c0", "c1"]
        assert first["next"].startswith("http://localhost/v1/containers?limit=2&marker=")
        rest = (await c.get(first["next"])).json()
        assert [x["name"] for x in rest["containers"]] == ["c2"] and rest["next"] is None


async def test_update_rename_logs_execute_top(bed: Bed) -> None:
    async with bed.client() as c:
        uid = (await _run(c, image="x")).json()["uuid"]
        await bed.converge("web", "Running")
        r = await c.patch(f"/v1/containers/{uid}", json={"cpu": 1.5, "memory": "128m"})
        assert r.status_code == 200 and r.json()["memory"] == "128M"
        obj = await bed.store.get(Container, "web", "demo")
        assert obj.spec.resources.cpu == 1.5 and obj.metadata.generation == 2
        r = await c.post(f"/v1/containers/{uid}/rename", params={"name": "Front_End"})
        assert r.json()["name"] == "Front_End" and r.json()["uuid"] == uid
        assert (await c.get("/v1/containers/Front_End")).json()["uuid"] == uid
        logs = await c.get("/v1/containers/Front_End/logs", params={"tail": "2"})
        assert logs.json() == "two\nthree\n"
        r = await c.post(
            "/v1/containers/Front_End/execute", params={"command": '"sh" "-c" "echo hi"'}
        )
        assert r.json()["output"] == "sh -c echo hi" and r.json()["exit_code"] == 3
        r = await c.get("/v1/containers/Front_End/top", params={"ps_args": "-o pid,args"})
        assert r.status_code == 200 and r.json() == {
            "Titles": ["PID", "USER", "TIME", "COMMAND"],
            "Processes": [
                ["1", "root", "0:00", "httpd -f -p 8080"],
                ["9", "root", "0:00", "ps -o pid,args"],
            ],
        }
        bed.io.has_ps = False
        assert (await c.get("/v1/containers/Front_End/top")).status_code == 501
        await bed.converge("web", "Stopped")
        assert (await c.get("/v1/containers/Front_End/top")).status_code == 409


async def test_stats_of_a_running_container_in_zuns_shape(bed: Bed) -> None:
    async with bed.client() as c:
        await _run(c, "Front_End", image="x")
        assert (await c.get("/v1/containers/Front_End/stats")).status_code == 409  # Creating
        name = (await bed.store.list(Container, "demo")).items[0].name
        await bed.converge(name, "Running")
        r = await c.get("/v1/containers/Front_End/stats")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "CONTAINER": "Front_End",
            "CPU %": 12.35,
            "MEM USAGE(MiB)": 96.0,
            "MEM LIMIT(MiB)": 384.0,
            "MEM %": 25.0,
            "BLOCK I/O(B)": "4096/512",
            "NET I/O(B)": "1500/700",
        }
        await bed.converge(name, "Stopped")
        r = await c.get("/v1/containers/Front_End/stats")
        assert r.status_code == 409 and "in Stopped state" in r.json()["errors"][0]["title"]


async def test_errors_in_zuns_shape(bed: Bed) -> None:
    async with bed.client() as c:
        r = await c.get("/v1/containers/nope")
        (err,) = r.json()["errors"]
        assert r.status_code == 404 and err["code"] == "zun.common.exception.ContainerNotFound"
        assert (await c.post("/v1/containers", json={"name": "x"})).status_code == 400
        r = await c.post("/v1/containers", json={"image": "x", "name": "bad name!"})
        assert r.status_code == 400 and "Invalid name" in r.json()["errors"][0]["detail"]
        await _run(c, "dup", image="x")
        r = await c.post("/v1/containers", json={"image": "x", "name": "dup"})
        assert r.status_code == 409 and r.json()["errors"][0]["status"] == 409
        assert (await c.get("/v1/nowhere")).json()["errors"][0]["status"] == 404


async def test_tokens_and_projects_without_noauth() -> None:
    bed = Bed(noauth=False)
    tokens = Tokens(bed.kv)
    member = await tokens.create("m", Role.MEMBER, ["demo"])
    reader = await tokens.create("r", Role.READER, ["demo"])
    admin = await tokens.create("a", Role.ADMIN, [])
    async with bed.client() as c:
        r = await c.get("/v1/containers")
        assert r.status_code == 401 and r.json()["errors"][0]["status"] == 401
        assert (await c.get("/v1/containers", headers={"X-Auth-Token": "zun_x"})).status_code == 401
        r = await c.get("/v1/containers", headers={"X-Auth-Token": "notused"})
        assert r.status_code == 401 and "zun_ tokens" in r.json()["errors"][0]["title"]
    async with bed.client(**{"X-Auth-Token": member}) as c:
        await _run(c, image="x")
    async with bed.client(**{"X-Auth-Token": reader}) as c:
        assert [x["name"] for x in (await c.get("/v1/containers")).json()["containers"]] == ["web"]
        assert (await c.post("/v1/containers/web/stop")).status_code == 403
        assert (await c.get("/v1/hosts")).status_code == 403
        assert (await c.get("/v1/containers", headers={"X-Project-Id": "other"})).status_code == 403
    async with bed.client(**{"X-Auth-Token": admin, "X-Project-Id": "demo"}) as c:
        assert (await c.get("/v1/containers/web")).status_code == 200
        r = await c.put("/v1/quotas/demo", json={"containers": 1, "memory": 512})
        assert r.json() == {"containers": 1, "cpu": -1, "memory": 512, "disk": -1}
        used = (await c.get("/v1/quotas/demo", params={"usages": "true"})).json()
        assert used["containers"] == {"limit": 1, "in_use": 1}
        r = await c.post("/v1/containers", json={"image": "x", "name": "two"})
        assert r.status_code == 403 and "quota" in r.json()["errors"][0]["detail"].lower()
        assert (await c.get("/v1/hosts")).json() == {"hosts": [], "next": None}


async def test_noauth_ignores_keystoneauths_placeholder_but_checks_our_tokens(bed: Bed) -> None:
    async with bed.client(**{"X-Auth-Token": "notused"}) as c:
        await _run(c, image="x")
        assert (await c.get("/v1/containers/web")).json()["project_id"] == "demo"
    async with bed.client(**{"X-Auth-Token": "zun_revoked"}) as c:
        assert (await c.get("/v1/containers")).status_code == 401


async def test_error_and_deleting_statuses_and_hosts() -> None:
    bed = Bed(noauth=False)
    admin = await Tokens(bed.kv).create("a", Role.ADMIN, [])
    host = parse({"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Host",
                  "metadata": {"name": "local"},
                  "spec": {"endpoint": "unix:///var/run/docker.sock"}})  # fmt: skip
    await bed.store.create(host)
    async with bed.client(**{"X-Auth-Token": admin, "X-Project-Id": "demo"}) as c:
        (shown,) = (await c.get("/v1/hosts")).json()["hosts"]
        assert shown["hostname"] == "local" and shown["status"] == "down"
        assert (await c.get(f"/v1/hosts/{shown['uuid']}")).json()["hostname"] == "local"
        await _run(c, image="x")
        obj = await bed.store.get(Container, "web", "demo")
        obj.status.phase = "Error"
        obj.status.set_condition("Ready", False, "ImageNotFound", "no image x")
        await bed.store.update_status(obj)
        got = (await c.get("/v1/containers/web")).json()
        assert (got["status"], got["status_reason"]) == ("Error", "ImageNotFound: no image x")
        assert (await c.post("/v1/containers/web/stop")).status_code == 409
        obj = await bed.store.get(Container, "web", "demo")
        obj.metadata.finalizers = ["zun.openstack.org/runtime"]
        await bed.store.update(obj)
        assert (await c.delete("/v1/containers/web")).status_code == 204
        got = (await c.get("/v1/containers/web")).json()
        assert (got["status"], got["task_state"]) == ("Deleting", "container_deleting")


def test_start_after_stop_starts_whatever_the_restart_policy() -> None:
    """The reconciler's rule Zun's start needs: an exit the spec asked for is not the
    container's own, so `Running` again starts it even with restart policy Never."""
    obj = parse({"apiVersion": "zun.openstack.org/v1alpha1", "kind": "Container",
                 "metadata": {"name": "w", "project": "demo"},
                 "spec": {"image": "x", "restartPolicy": "Never"}})  # fmt: skip
    assert isinstance(obj, Container)
    exited = ContainerState(
        id="c", name="n", image="x", labels={}, status=EngineStatus.EXITED,
        exit_code=0, started_at=datetime.now(UTC),
    )  # fmt: skip
    obj.status.set_condition("Ready", False, "Exited", "exit code 0")
    assert not should_restart(obj, exited)
    obj.status.set_condition("Ready", False, "Stopped", "exit code 0")
    assert should_restart(obj, exited)
