"""`zun-controller`: `up` (all-in-one on one machine), `run` (the manager alone), `api`, `token`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from zun_controller.cli import api_commands, bridge, crds, encryption, logs
from zun_controller.cli.apiserver import RunningApi, first_admin_token, start_api
from zun_controller.cli.apiserver import banner as _banner
from zun_controller.cli.compose import build_manager, register_local_host
from zun_controller.cli.encryption import KeyFileOpt, load_ring, open_kv, up_key_ring
from zun_controller.cli.logs import LogJson, LogLevel
from zun_controller.config import EtcdSettings, ManagerSettings, default_data_dir
from zun_controller.drivers.runtime.docker import docker_runtime_factory
from zun_controller.engine.leader import LeadershipLost
from zun_controller.errors import ZunError
from zun_controller.gitops.policy import GitPolicy
from zun_controller.metrics import Metrics
from zun_controller.reconcilers.app_docker import DEFAULT_LB_IMAGE
from zun_controller.store.instance import instance_id
from zun_controller.store.keyfile import KeyRing
from zun_controller.store.records import RecordStore
from zun_controller.store.server import EtcdServer

app = typer.Typer(
    help="Zun controller: containers on Docker, Swarm and Kubernetes.", add_completion=False
)

EtcdOpt = Annotated[str | None, typer.Option("--etcd", envvar="ZUN_ETCD", help="etcd client URL")]
HealthPort = Annotated[
    int,
    typer.Option(
        "--health-port", envvar="ZUN_HEALTH_PORT", help="port of /healthz /readyz /metrics"
    ),
]
HealthHost = Annotated[
    str,
    typer.Option(
        "--health-host", envvar="ZUN_HEALTH_HOST", help="address of /healthz /readyz /metrics"
    ),
]
Workers = Annotated[int, typer.Option("--workers", envvar="ZUN_WORKERS", help="workers per kind")]
LeaseTtl = Annotated[
    int, typer.Option("--lease-ttl", envvar="ZUN_LEASE_TTL", help="leader lease TTL (s)")
]
Identity = Annotated[
    str | None, typer.Option("--identity", envvar="ZUN_IDENTITY", help="leader identity")
]
LbImage = Annotated[
    str,
    typer.Option(
        "--lb-image",
        envvar="ZUN_LB_IMAGE",
        help="haproxy image of docker Clusters' balancers (the default is a test image)",
    ),
]
GitSchemes = Annotated[
    str,
    typer.Option(
        "--git-schemes",
        envvar="ZUN_GIT_SCHEMES",
        help="URL schemes GitRepositories may use (of https,ssh,http,git,file)",
    ),
]


TenantNames = Annotated[
    bool,
    typer.Option(
        "--metrics-tenant-names",
        envvar="ZUN_METRICS_TENANT_NAMES",
        help="label /metrics with project and record names (it needs no token: off by default)",
    ),
]


def _git_policy(schemes: str) -> GitPolicy:
    try:
        return GitPolicy.allowing(schemes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--git-schemes") from None


async def _serve(
    etcd: EtcdSettings,
    settings: ManagerSettings,
    banner: bool,
    local_engine: str | None = None,
    api_port: int | None = None,
) -> None:
    assert etcd.url
    kv = await open_kv(etcd.url, etcd.keys, call_timeout=etcd.timeout)
    store = RecordStore(kv)
    if local_engine:
        await register_local_host(store, local_engine)
    metrics = Metrics(tenant_names=settings.metrics_tenant_names)
    instance = await instance_id(kv)
    manager = build_manager(store, settings, metrics, docker_runtime_factory, instance)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.create_task(manager.run(stop))
    await asyncio.wait(
        {runner, asyncio.ensure_future(manager.serving.wait())}, return_when="FIRST_COMPLETED"
    )
    api = await _start_api(store, api_port, metrics) if api_port is not None else None
    if banner and manager.health:
        health = f"http://{manager.health.host}:{manager.health.port}"
        print(f"zun-controller is up\n  etcd:    {etcd.url}\n  health:  {health}/healthz")
        if api:
            print(_banner(api.url, await first_admin_token(store)))
        print(f"  metrics: {health}/metrics\nPress Ctrl-C to stop.", flush=True)
    try:
        await runner
    finally:
        if api:
            await api.stop()
        await kv.close()


async def _start_api(store: RecordStore, port: int, metrics: Metrics) -> RunningApi:
    return await start_api(store, docker_runtime_factory, port, metrics=metrics)


def _settings(
    workers: int, lease_ttl: int, identity: str | None, health_port: int
) -> ManagerSettings:
    return ManagerSettings(
        workers=workers, lease_ttl=lease_ttl, identity=identity, health_port=health_port
    )


def _run(coro_factory: object) -> None:
    try:
        asyncio.run(coro_factory)  # type: ignore[arg-type]
    except LeadershipLost as exc:
        print(f"zun-controller: {exc}; exiting so a supervisor restarts it", file=sys.stderr)
        raise typer.Exit(1) from None
    except (ZunError, FileNotFoundError) as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _keys(load: Callable[[], KeyRing | None]) -> KeyRing | None:
    """The key ring, or exit 1 saying what is wrong with the key file."""
    try:
        return load()
    except ZunError as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def embedded_etcd(data_dir: Path, client_port: int) -> EtcdServer:
    """`up`'s single-member etcd. Its peer port is client+1, not a free one: etcd records the
    member's peer URL when the data dir is made and ignores the flag on later starts, so a port
    that comes out the same every time keeps the recorded URL true."""
    return EtcdServer(data_dir / "etcd", client_port=client_port, peer_port=client_port + 1)


def _start_embedded(server: EtcdServer) -> None:
    """Start it, or say in one line why not (a port in use, no etcd binary)."""
    try:
        server.start()
    except (ZunError, FileNotFoundError) as exc:
        log = server.data_dir.with_suffix(".log")
        print(f"zun-controller: embedded etcd on {server.url}: {exc} ({log})", file=sys.stderr)
        raise typer.Exit(1) from None


@app.command()
def up(
    etcd: EtcdOpt = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", envvar="ZUN_DATA_DIR", help="data [~/.local/share/zun]"),
    ] = None,
    health_port: HealthPort = 8081,
    workers: Workers = 4,
    docker: Annotated[
        str,
        typer.Option(
            "--docker", envvar="DOCKER_HOST", help="local engine, registered as Host 'local'"
        ),
    ] = "unix:///var/run/docker.sock",
    api_port: Annotated[
        int, typer.Option("--api-port", envvar="ZUN_API_PORT", help="REST API on 127.0.0.1")
    ] = 7070,
    etcd_port: Annotated[
        int,
        typer.Option(
            "--etcd-port",
            envvar="ZUN_ETCD_PORT",
            help="embedded etcd's client port on 127.0.0.1 (its peer port is the next one)",
        ),
    ] = 2479,
    lb_image: LbImage = DEFAULT_LB_IMAGE,
    git_schemes: GitSchemes = "https,ssh",
    metrics_tenant_names: TenantNames = False,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--encryption-key-file",
            envvar="ZUN_ENCRYPTION_KEY_FILE",
            help="key file sealing Secrets and PullSecrets in etcd [with the embedded etcd: "
            f"<data dir>/{encryption.UP_KEY_FILE}, made on first start; with --etcd: none]",
        ),
    ] = None,
    log_json: LogJson = False,
    log_level: LogLevel = "INFO",
) -> None:
    """All-in-one for one machine: embedded etcd (unless --etcd), the manager, on 127.0.0.1."""
    logs.setup(log_level, log_json)
    data_dir = data_dir or default_data_dir()
    keys = _keys(lambda: up_key_ring(key_file, data_dir, embedded=etcd is None))
    server = embedded_etcd(data_dir, etcd_port) if etcd is None else None
    try:
        if server:
            _start_embedded(server)
            etcd = server.url
        settings = ManagerSettings(
            workers=workers,
            leader_election=False,
            health_port=health_port,
            lb_image=lb_image,
            git_policy=_git_policy(git_schemes),
            metrics_tenant_names=metrics_tenant_names,
        )
        store = EtcdSettings(url=etcd, keys=keys)
        _run(_serve(store, settings, True, local_engine=docker, api_port=api_port))
    finally:
        if server:
            server.stop()


@app.command()
def run(
    etcd: EtcdOpt = "http://127.0.0.1:2379",
    health_port: HealthPort = 8081,
    health_host: HealthHost = "127.0.0.1",
    workers: Workers = 4,
    lease_ttl: LeaseTtl = 10,
    identity: Identity = None,
    action_log: Annotated[
        Path | None,
        typer.Option("--action-log", envvar="ZUN_ACTION_LOG", help="JSON line per reconcile"),
    ] = None,
    lb_image: LbImage = DEFAULT_LB_IMAGE,
    git_schemes: GitSchemes = "https,ssh",
    metrics_tenant_names: TenantNames = False,
    key_file: KeyFileOpt = None,
    log_json: LogJson = False,
    log_level: LogLevel = "INFO",
) -> None:
    """The manager alone, with leader election, against an existing etcd."""
    logs.setup(log_level, log_json)
    keys = _keys(lambda: load_ring(key_file))
    settings = _settings(workers, lease_ttl, identity, health_port)
    settings = dataclasses.replace(
        settings,
        health_host=health_host,
        action_log=action_log,
        lb_image=lb_image,
        git_policy=_git_policy(git_schemes),
        metrics_tenant_names=metrics_tenant_names,
    )
    _run(_serve(EtcdSettings(url=etcd, keys=keys), settings, banner=False))


app.command("crds")(crds.crds)
app.command("bridge")(bridge.bridge)
app.command("api")(api_commands.api)
app.command("token")(api_commands.token)
app.command("rewrap")(encryption.rewrap_command)
app.command("keygen")(encryption.keygen)


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        app()
