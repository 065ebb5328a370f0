"""`zun-controller api` (the REST API alone, against --etcd) and `zun-controller token` (make a
token straight in etcd: how an operator gets a new admin token without one)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from typing import Annotated

import typer

from zun_controller.api.auth import Role, Tokens
from zun_controller.api.token_record import Default, default_lifetime, lifetime
from zun_controller.cli import logs
from zun_controller.cli.apiserver import banner, start_api
from zun_controller.cli.encryption import KeyFileOpt, load_ring, open_kv
from zun_controller.drivers.runtime.docker import docker_runtime_factory
from zun_controller.errors import ZunError
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.keyfile import KeyRing
from zun_controller.store.records import RecordStore

EtcdOpt = Annotated[str, typer.Option("--etcd", envvar="ZUN_ETCD", help="etcd client URL")]
ApiPort = Annotated[int, typer.Option("--api-port", envvar="ZUN_API_PORT", help="API port")]
ListenAddress = Annotated[
    str,
    typer.Option(
        "--listen-address",
        envvar="ZUN_API_LISTEN",
        help="address to listen on (0.0.0.0: every interface, e.g. in a pod behind a Service)",
    ),
]


async def _api(etcd: str, port: int, host: str, keys: KeyRing | None) -> None:
    kv = await open_kv(etcd, keys)
    try:
        running = await start_api(RecordStore(kv), docker_runtime_factory, port, host)
        print(f"zun-controller api is up\n{banner(running.url, None)}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await asyncio.wait(
            {running.task, asyncio.ensure_future(stop.wait())}, return_when="FIRST_COMPLETED"
        )
        await running.stop()
    finally:
        await kv.close()


def api(
    etcd: EtcdOpt = "http://127.0.0.1:2379",
    api_port: ApiPort = 7070,
    listen_address: ListenAddress = "127.0.0.1",
    key_file: KeyFileOpt = None,
    log_json: logs.LogJson = False,
    log_level: logs.LogLevel = "INFO",
) -> None:
    """The REST API alone (on 127.0.0.1 unless --listen-address), against an existing etcd."""
    logs.setup(log_level, log_json)
    try:
        asyncio.run(_api(etcd, api_port, listen_address, load_ring(key_file)))
    except ZunError as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


async def _token(
    etcd: str, name: str, role: Role, projects: list[str], ttl: timedelta | Default | None
) -> str:
    kv = EtcdKV.from_url(etcd)
    try:
        tokens = Tokens(kv, lifetime=default_lifetime(os.environ))
        return await tokens.create(name, role, projects, lifetime=ttl)
    finally:
        await kv.close()


def _lifetime(text: str | None) -> timedelta | Default | None:
    """The --lifetime asked for, or the default (ZUN_TOKEN_LIFETIME, checked here too)."""
    try:
        default_lifetime(os.environ)
        return Default.LIFETIME if text is None else lifetime(text)
    except ValueError as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None


def token(
    name: Annotated[str, typer.Option("--name", help="who or what the token is for")],
    role: Annotated[Role, typer.Option("--role")] = Role.MEMBER,
    project: Annotated[list[str] | None, typer.Option("--project", help="repeatable")] = None,
    lifetime_: Annotated[
        str | None,
        typer.Option(
            "--lifetime",
            help="e.g. 90d, 12h, 1h30m, or never [ZUN_TOKEN_LIFETIME, which may not be "
            "never; else 90d]",
        ),
    ] = None,
    etcd: EtcdOpt = "http://127.0.0.1:2479",
) -> None:
    """Make an API token in etcd (stored hashed) and print it, once."""
    if role is not Role.ADMIN and not project:
        print("zun-controller: a member or reader token needs --project", file=sys.stderr)
        raise typer.Exit(2)
    ttl = _lifetime(lifetime_)
    print(asyncio.run(_token(etcd, name, role, project or [], ttl)))
