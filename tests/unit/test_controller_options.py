"""`zun-controller run` and `up`: their options reach what the manager is built from."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zun_controller.cli import controller
from zun_controller.config import EtcdSettings
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.server import free_port


@pytest.fixture(autouse=True)
def _logging_kept() -> Iterator[None]:
    """The commands set the root logger up for a process; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def invoke(*args: str, env: dict[str, str] | None = None) -> None:
    result = CliRunner().invoke(controller.app, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)


def _port_pair() -> int:
    """A free port whose successor is free too (the embedded etcd's peer port)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@pytest.mark.e2e
def test_up_runs_its_etcd_on_the_port_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = _port_pair()
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
