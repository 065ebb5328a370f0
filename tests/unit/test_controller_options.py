"""`zun-controller run` and `up`: their options reach what the manager is built from, and the
balancer image reaches the Containers a docker Cluster's Application gets."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zun_controller.cli import api_commands, bridge, controller
from zun_controller.cli.compose import build_manager
from zun_controller.cli.encryption import up_key_ring
from zun_controller.config import EtcdSettings, ManagerSettings
from zun_controller.drivers.runtime.fake import FakeRuntimeFactory
from zun_controller.errors import NotFoundError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_docker import DEFAULT_LB_IMAGE
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.keyfile import KeyFileError, add_key
from zun_controller.store.memory import MemoryKV
from zun_controller.store.records import RecordStore
from zun_controller.store.server import free_port_pair

LB = "registry.example/ops/haproxy:2.8"
HTTPD = "zun-test/httpd:v1"

Served = list[tuple[EtcdSettings, ManagerSettings]]


@pytest.fixture(autouse=True)
def _logging_kept() -> Iterator[None]:
    """The commands set the root logger up for a process; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Served:
    """What the command would serve with: `_serve` is where parsing ends and running begins."""
    monkeypatch.delenv("ZUN_LB_IMAGE", raising=False)
    got: Served = []

    async def serve(etcd: EtcdSettings, settings: ManagerSettings, *_: Any, **__: Any) -> None:
        got.append((etcd, settings))

    monkeypatch.setattr(controller, "_serve", serve)
    return got


def invoke(*args: str, env: dict[str, str] | None = None) -> None:
    result = CliRunner().invoke(controller.app, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.fixture
def up_args(tmp_path: Path) -> list[str]:
    """`up` against an etcd of its own, with a data dir of the test's (it makes a key file)."""
    return ["up", "--etcd", "http://127.0.0.1:1", "--data-dir", str(tmp_path)]


@pytest.mark.parametrize("command", [["run"], ["up"]])
def test_lb_image_is_an_option_and_a_variable(
    served: Served, command: list[str], up_args: list[str]
) -> None:
    command = up_args if command == ["up"] else command
    invoke(*command)
    invoke(*command, "--lb-image", LB)
    invoke(*command, env={"ZUN_LB_IMAGE": LB})
    assert [s.lb_image for _, s in served] == [DEFAULT_LB_IMAGE, LB, LB]


@pytest.mark.e2e
def test_up_runs_its_etcd_on_the_port_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port_pair()
    revisions: list[int] = []

    async def serve(etcd: EtcdSettings, *_: Any, **__: Any) -> None:
        assert etcd.url is not None
        kv = EtcdKV.from_url(etcd.url)
        revisions.append(await kv.revision())
        await kv.close()

    monkeypatch.setattr(controller, "_serve", serve)
    invoke("up", "--data-dir", str(tmp_path), env={"ZUN_ETCD_PORT": str(port)})
    assert len(revisions) == 1 and (tmp_path / "etcd" / "member").is_dir()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # stopped with `up`


@pytest.mark.e2e
def test_up_says_in_one_line_that_its_etcd_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            controller.app, ["up", "--data-dir", str(tmp_path), "--etcd-port", str(port)]
        )
    assert result.exit_code == 1
    assert f"zun-controller: embedded etcd on http://127.0.0.1:{port}: etcd exited" in result.output


def test_the_key_file_reaches_the_store_settings_of_run_and_up(
    served: Served, tmp_path: Path, up_args: list[str]
) -> None:
    keys = tmp_path / "keys.yaml"
    add_key(keys, "k7")
    invoke("run", "--encryption-key-file", str(keys))
    invoke("run", env={"ZUN_ENCRYPTION_KEY_FILE": str(keys)})
    invoke("run")
    invoke(*up_args)
    invoke(*up_args, "--encryption-key-file", str(keys))
    ids = [etcd.keys.ids if etcd.keys else None for etcd, _ in served]
    assert ids == [["k7"], ["k7"], None, None, ["k7"]]


def test_a_key_file_others_may_read_stops_run_with_the_fix(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    add_key(keys, "k1")
    keys.chmod(0o644)
    result = CliRunner().invoke(controller.app, ["run", "--encryption-key-file", str(keys)])
    assert result.exit_code == 1
    assert f"has mode 0644: group or others may read it; run `chmod 600 {keys}`" in result.output


def test_up_makes_its_key_file_once_beside_its_embedded_etcd(tmp_path: Path) -> None:
    first = up_key_ring(None, tmp_path, embedded=True)
    again = up_key_ring(None, tmp_path, embedded=True)
    assert first == again and first is not None and first.ids[0].startswith("up-")
    (tmp_path / "encryption-keys.yaml").unlink()
    remade = up_key_ring(None, tmp_path, embedded=True)
    assert remade is not None and remade.ids != first.ids  # the old id's values: named at start
    assert (tmp_path / "encryption-keys.yaml").stat().st_mode & 0o777 == 0o600
    given = tmp_path / "given.yaml"
    add_key(given, "mine")
    for embedded in (True, False):
        got = up_key_ring(given, tmp_path, embedded=embedded)
        assert got is not None and got.ids == ["mine"]
    with pytest.raises(KeyFileError, match="does not exist"):
        up_key_ring(tmp_path / "absent.yaml", tmp_path, embedded=True)


def test_up_with_an_outside_etcd_makes_no_key(tmp_path: Path) -> None:
    assert up_key_ring(None, tmp_path / "data", embedded=False) is None
    assert not (tmp_path / "data").exists()


def test_up_says_when_it_cannot_make_its_key_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(KeyFileError, match=r"cannot make the key file .*--encryption-key-file"):
        up_key_ring(None, tmp_path / "file" / "data", embedded=True)


def _record(kind: str, name: str, spec: dict[str, Any], **meta: str) -> Any:
    return parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": kind,
            "metadata": {"name": name, **meta},
            "spec": spec,
        }
    )


async def _until_created(store: RecordStore, name: str, project: str) -> Container:
    async with asyncio.timeout(10):
        while True:
            try:
                return await store.get(Container, name, project)
            except NotFoundError:
                await asyncio.sleep(0.02)


async def test_a_docker_clusters_balancer_runs_the_configured_image(tmp_path: Path) -> None:
    store = RecordStore(MemoryKV())
    settings = ManagerSettings(
        leader_election=False, health_port=0, gitops_cache=tmp_path, lb_image=LB
    )
    factory = FakeRuntimeFactory(images=(HTTPD, LB))
    manager = build_manager(store, settings, Metrics(), factory, "test")
    stop = asyncio.Event()
    running = asyncio.create_task(manager.run(stop))
    try:
        await store.create(_record("Host", "a", {"endpoint": "tcp://a:2375"}))
        await store.create(_record("Cluster", "dk", {"type": "docker"}))
        app = {
            "cluster": "dk",
            "template": {"containers": [{"name": "web", "image": HTTPD}]},
            "service": {"ports": [{"port": 80, "targetPort": 8080}]},
        }
        await store.create(_record("Application", "web", app, project="demo"))
        balancer = await _until_created(store, "web-lb", "demo")
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert balancer.spec.image == LB


def test_api_and_bridge_take_the_key_file_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keys = tmp_path / "keys.yaml"
    add_key(keys, "k9")
    seen: list[object] = []

    async def api(*args: Any) -> None:
        seen.append(args[-1].ids if args[-1] else None)

    monkeypatch.setattr(api_commands, "_api", api)
    monkeypatch.setattr(bridge, "_main", api)
    invoke("api", "--encryption-key-file", str(keys))
    invoke("api")
    invoke("bridge", "--kubeconfig", "k", env={"ZUN_ENCRYPTION_KEY_FILE": str(keys)})
    assert seen == [["k9"], None, ["k9"]]
