"""The API server as a long-lived part of a process: uvicorn on one loopback port, the first admin
token, the `ContainerIO` and `ImageIO` adapter that gives the API logs, exec, stats and the
Hosts' images, pulls and removals through the runtime drivers (one `RuntimePool` of its own,
clients made from each Host's endpoint), and an `EventRecorder` of its own for quota refusals
(its drops counted in the process's `Metrics` when it has some: `up` does, `api` alone exports
none)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Generator, Sequence

import uvicorn

from zun_controller.admission import AdmissionPolicy
from zun_controller.api.app import create_app
from zun_controller.api.auth import Role, Tokens
from zun_controller.api.io import Credentials
from zun_controller.api.limits import ApiLimits
from zun_controller.api.token_record import default_lifetime
from zun_controller.api.zunv1 import ZunV1Settings
from zun_controller.api.zunv1.noauth import check_listen
from zun_controller.drivers.runtime.base import (
    ContainerStats,
    ExecResult,
    ImageInfo,
    RegistryAuth,
    Runtime,
    RuntimeFactory,
)
from zun_controller.engine.events import EventRecorder
from zun_controller.errors import PermanentError
from zun_controller.metrics import Metrics
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.reconcilers.runtimes import RuntimePool
from zun_controller.store.records import RecordStore

LOOPBACK = "127.0.0.1"
#: listen addresses that mean "every interface"
ANY = ("0.0.0.0", "::", "")


class PoolContainerIO:
    """`api.io.ContainerIO` and `api.io.ImageIO` on the runtime drivers."""

    def __init__(self, store: RecordStore, factory: RuntimeFactory) -> None:
        self.store = store
        self.pool = RuntimePool(factory)

    async def _runtime_of(self, container: Container) -> tuple[str, Runtime]:
        if not container.status.host or not container.status.container_id:
            raise PermanentError("NotPlaced", f"{container.key} has no engine container yet")
        host = await self.store.get(Host, container.status.host)
        return container.status.container_id, self.pool.for_host(host)

    async def logs(
        self, container: Container, *, tail: int | None, follow: bool
    ) -> AsyncIterator[bytes]:
        cid, runtime = await self._runtime_of(container)
        async for chunk in runtime.logs(cid, tail=tail, follow=follow):
            yield chunk

    async def exec(
        self, container: Container, command: list[str], *, max_output: int, max_seconds: float
    ) -> ExecResult:
        cid, runtime = await self._runtime_of(container)
        return await runtime.exec(cid, command, max_output=max_output, max_seconds=max_seconds)

    async def stats(self, container: Container) -> ContainerStats:
        cid, runtime = await self._runtime_of(container)
        return await runtime.stats(cid)

    async def images(self, host: Host) -> Sequence[ImageInfo]:
        return await self.pool.for_host(host).list_images()

    async def pull(
        self, host: Host, image: str, credentials: Credentials | None, *, within: float
    ) -> ImageInfo:
        auth = None
        if credentials is not None:
            auth = RegistryAuth(credentials.registry, credentials.username, credentials.password)
        return await self.pool.for_host(host).pull_image(image, auth, within=within)

    async def remove(self, host: Host, image: str) -> None:
        await self.pool.for_host(host).remove_image(image)

    async def close(self) -> None:
        await self.pool.close()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the process's composition root has them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def api_server(
    store: RecordStore,
    factory: RuntimeFactory | None,
    port: int,
    host: str = LOOPBACK,
    metrics: Metrics | None = None,
) -> tuple[uvicorn.Server, PoolContainerIO | None]:
    """The server and its `ContainerIO`; `PermanentError` when no-auth mode (ZUN_V1_NOAUTH)
    is asked for on an address other than a loopback one, or a ZUN_API_* limit or
    ZUN_TOKEN_LIFETIME (the lifetime of tokens made without one) is bad."""
    v1 = ZunV1Settings.from_env(os.environ)
    if v1.noauth:
        check_listen(host)
    try:
        limits = ApiLimits.from_env(os.environ)
        lifetime = default_lifetime(os.environ)
    except ValueError as exc:
        raise PermanentError("InvalidLimit", str(exc)) from None
    io = PoolContainerIO(store, factory) if factory else None
    events = EventRecorder(store, metrics or Metrics())
    policy = AdmissionPolicy.from_env(os.environ).reserving(port)
    app = create_app(
        store,
        io,
        zun_v1=v1,
        events=events,
        policy=policy,
        limits=limits,
        images=io,
        token_lifetime=lifetime,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    return _Server(config), io


def bound_port(server: uvicorn.Server) -> int:
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


async def first_admin_token(store: RecordStore) -> str | None:
    """A new admin token (shown once; of the ZUN_TOKEN_LIFETIME default lifetime) when no
    admin token that has not expired exists, else None."""
    tokens = Tokens(store.kv, lifetime=default_lifetime(os.environ))
    if await tokens.any_admin():
        return None
    return await tokens.create("admin", Role.ADMIN, [])


class RunningApi:
    def __init__(self, server: uvicorn.Server, io: PoolContainerIO | None) -> None:
        self.server, self.io = server, io
        self.task = asyncio.create_task(server.serve())

    @property
    def url(self) -> str:
        """Where a client on this machine reaches it."""
        host = self.server.config.host
        return f"http://{LOOPBACK if host in ANY else host}:{bound_port(self.server)}"

    async def started(self, within: float = 15.0) -> None:
        deadline = time.monotonic() + within
        while not self.server.started:
            if self.task.done() or time.monotonic() > deadline:
                where = f"{self.server.config.host}:{self.server.config.port}"
                raise PermanentError("ApiNotServing", f"cannot serve the API on {where}")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(BaseException):
            await self.task
        if self.io:
            await self.io.close()


async def start_api(
    store: RecordStore,
    factory: RuntimeFactory | None,
    port: int,
    host: str = LOOPBACK,
    metrics: Metrics | None = None,
) -> RunningApi:
    """The API serving on `host`:`port` (0: any free port), once it accepts connections."""
    running = RunningApi(*api_server(store, factory, port, host, metrics))
    await running.started()
    return running


def banner(url: str, token: str | None) -> str:
    lines = [f"  api:     {url}  (OpenAPI: {url}/openapi.json)"]
    if token:
        lines += [
            "  admin token (shown once; keep it):",
            f"    export ZUN_URL={url} ZUN_TOKEN={token}",
        ]
    else:
        lines.append(
            "  admin token: made on first start; for a new one run "
            "`zun-controller token --name NAME --role admin --etcd URL`"
        )
    return "\n".join(lines)
