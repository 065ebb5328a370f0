"""`zun-controller bridge`: mirror Zun's custom resources into the store and status back."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer

from zun_controller.bridge.run import build_bridge, serve_bridge
from zun_controller.cli import logs
from zun_controller.cli.encryption import KeyFileOpt, load_ring, open_kv
from zun_controller.engine.leader import LeadershipLost
from zun_controller.errors import ZunError
from zun_controller.metrics import Metrics
from zun_controller.store.keyfile import KeyRing
from zun_controller.store.records import RecordStore


async def _main(
    etcd: str, kubeconfig: str, health_port: int, identity: str | None, keys: KeyRing | None
) -> None:
    kv = await open_kv(etcd, keys)
    manager = build_bridge(
        RecordStore(kv), kubeconfig, Metrics(), health_port=health_port, identity=identity
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve_bridge(manager, stop)
    finally:
        await kv.close()


def bridge(
    etcd: Annotated[str, typer.Option("--etcd", envvar="ZUN_ETCD")] = "http://127.0.0.1:2379",
    kubeconfig: Annotated[
        str, typer.Option("--kubeconfig", envvar="KUBECONFIG", help="cluster holding the CRDs")
    ] = "",
    health_port: Annotated[int, typer.Option("--health-port", envvar="ZUN_HEALTH_PORT")] = 8082,
    identity: Annotated[str | None, typer.Option("--identity", envvar="ZUN_IDENTITY")] = None,
    key_file: KeyFileOpt = None,
    log_json: logs.LogJson = False,
    log_level: logs.LogLevel = "INFO",
) -> None:
    """Custom resources in namespace N <-> records in project N (spec down, status up)."""
    logs.setup(log_level, log_json)
    if not kubeconfig:
        print("zun-controller: --kubeconfig (or KUBECONFIG) is required", file=sys.stderr)
        raise typer.Exit(2)
    try:
        asyncio.run(_main(etcd, kubeconfig, health_port, identity, load_ring(key_file)))
    except LeadershipLost as exc:
        print(f"zun-controller: {exc}; exiting so a supervisor restarts it", file=sys.stderr)
        raise typer.Exit(1) from None
    except ZunError as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
