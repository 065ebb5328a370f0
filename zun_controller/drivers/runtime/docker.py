"""`DockerRuntime`: the `Runtime` port on one Docker engine (or any engine speaking its API).

The docker SDK is synchronous. Every request runs on the runtime's own small thread pool, bounded
twice in time (the SDK's socket timeout, and `asyncio.timeout` as a backstop), and idempotent
requests are retried with exponential backoff (tenacity) on transient failures. SDK and HTTP
errors are translated once, here, into `zun_controller.errors` (`translate`).

Streams (events, logs) each run in a daemon thread feeding an asyncio queue (`_StreamPump`);
closing the async iterator shuts the HTTP socket down, which ends the thread at once.

Costs measured through this module (engine 20.10, 2 vCPU; MEASURED.md saw ~2x these on a
busier day): create ~9 ms, start ~180 ms, stop (init, grace 5 s) ~80 ms, remove ~8 ms.
`list_containers` is one `GET /containers/json` (the sparse listing, ~8 ms for 100) plus one
inspect per container, `POOL_SIZE` at a time (~140 ms for 100), because the listing lacks what
`ContainerState` holds (exit code, times, health, limits).

Not retried, because they are not idempotent: `create` (a lost reply then shows as
`ConflictError` on the next try: inspect the name) and `exec`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import math
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import docker.tls
import docker.types
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from zun_controller.drivers.runtime.base import (
    EXEC_OUTPUT_BYTES,
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    HostInfo,
    NetworkState,
    PublishedPort,
    RuntimeEvent,
    RuntimeFactory,
    VolumeState,
    carries,
    ours,
)
from zun_controller.drivers.runtime.docker_images import DockerImages
from zun_controller.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    StaleRuntimeStateError,
    TransientError,
    ZunError,
)

T = TypeVar("T")
Api = Any  # docker.APIClient: the SDK ships no type information

#: Threads (and pooled HTTP connections) per engine; the SDK's connection pool holds 10.
POOL_SIZE = 8
#: Tries of an idempotent request on transient failures, and the backoff between them.
RETRY_ATTEMPTS = 4
RETRY_WAIT_MAX_S = 2.0
#: Slack on top of the SDK's socket timeout before `asyncio.timeout` gives up on a thread.
BOUND_SLACK_S = 5.0
#: Execs running at once on one engine, on threads of their own: a slow or chatty command never
#: holds a thread that inspects, logs or stats need; one more is refused (TransientError).
EXEC_SLOTS = 4
EXEC_READ_BYTES = 64 * 1024
EXEC_FRAME_HEADER = 8
#: Items a stream's thread may read ahead of its consumer.
STREAM_BUFFER = 256
NANO = 1_000_000_000

_ZERO_TIME = "0001-01-01T00:00:00Z"
#: Event attributes Docker adds next to a container's labels.
_EVENT_ATTRIBUTES = frozenset({"name", "image", "exitCode", "signal", "execID"})
#: Server errors that are answers, not outages: retrying cannot help.
_PERMANENT_5XX = ("port is already allocated", "address already in use", "oci runtime")


# ------------------------------------------------------------------------------ errors


def translate(exc: BaseException, what: str) -> ZunError:
    """One SDK / HTTP failure as the package's error hierarchy."""
    if isinstance(exc, ZunError):
        return exc
    if isinstance(exc, docker.errors.ImageNotFound):
        return PermanentError("ImageNotFound", f"{what}: {exc.explanation}")
    if isinstance(exc, docker.errors.NotFound):
        return NotFoundError(f"{what}: {exc.explanation}")
    if isinstance(exc, docker.errors.APIError):
        return _translate_api_error(exc, what)
    # requests' ConnectionError and Timeout are OSErrors, like the socket errors under them;
    # the SDK wraps them in a DockerException while it negotiates the API version.
    if isinstance(exc, OSError) or isinstance(exc.__cause__, OSError):
        return TransientError(f"{what}: engine unreachable: {exc}")
    if isinstance(exc, docker.errors.DockerException):  # e.g. unreadable TLS files
        return PermanentError("InvalidConfig", f"{what}: {exc}")
    raise exc


def _stale_runtime_state(lowered: str) -> bool:
    """Docker's words for a container whose runtime state outlived an engine restart: the task
    ("task ... already exists", after dockerd was killed), containerd's task directory ("failed
    to start shim: mkdir ...: file exists") or runc's state ("id already in use"), the last two
    after restarts with hundreds of containers (the long chaos runs)."""
    return (
        ("task " in lowered and "already exists" in lowered)
        or "id already in use" in lowered
        or ("failed to start shim" in lowered and "file exists" in lowered)
    )


def _translate_api_error(exc: Any, what: str) -> ZunError:
    status: int = exc.status_code or 500
    message = f"{what}: {exc.explanation or exc}"
    lowered = message.lower()
    if _stale_runtime_state(lowered):
        return StaleRuntimeStateError(message)
    if "unknown runtime" in lowered or "invalid runtime" in lowered:
        return PermanentError("RuntimeNotFound", message)
    if status in (403, 409):  # 403: "network ... has active endpoints"
        return ConflictError(message)
    if status >= 500 and not any(text in lowered for text in _PERMANENT_5XX):
        return TransientError(message)
    return PermanentError("InvalidConfig", message)


def _api_error_says(exc: BaseException, *fragments: str) -> bool:
    text = str(getattr(exc, "explanation", "") or "").lower()
    return isinstance(exc, docker.errors.APIError) and any(f in text for f in fragments)


# ------------------------------------------------------------------------------ reading


def _parse_time(text: str | None) -> datetime | None:
    """Docker's RFC 3339 time with nanoseconds; None for its zero time."""
    if not text or text == _ZERO_TIME:
        return None
    head, _, fraction = text.removesuffix("Z").partition(".")
    micros = (fraction + "000000")[:6]
    return datetime.fromisoformat(f"{head}.{micros}").replace(tzinfo=UTC)


def _published(ports: Mapping[str, Any] | None) -> tuple[PublishedPort, ...]:
    out: list[PublishedPort] = []
    for key, bindings in (ports or {}).items():
        port, _, protocol = key.partition("/")
        out.extend(
            PublishedPort(int(port), protocol or "tcp", b["HostIp"], int(b["HostPort"]))
            for b in bindings or ()
            if b.get("HostPort")
        )
    return tuple(out)


def _exit_code(state: Mapping[str, Any]) -> int | None:
    """The last exit code; also set (127, 128) on a container still `created` whose start
    failed, next to `State.Error`."""
    if state.get("Status") in ("exited", "dead", "restarting") or state.get("Error"):
        return int(state.get("ExitCode", 0))
    return None


def container_state(attrs: Mapping[str, Any]) -> ContainerState:
    """`ContainerState` from `GET /containers/{id}/json`."""
    state, config, host = attrs["State"], attrs["Config"], attrs["HostConfig"]
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return ContainerState(
        id=attrs["Id"],
        name=attrs["Name"].lstrip("/"),
        image=config["Image"],
        labels=dict(config.get("Labels") or {}),
        status=ContainerStatus(state["Status"]),
        exit_code=_exit_code(state),
        started_at=_parse_time(state.get("StartedAt")),
        finished_at=_parse_time(state.get("FinishedAt")),
        restart_count=int(attrs.get("RestartCount") or 0),
        health=(state.get("Health") or {}).get("Status"),
        ips={name: n["IPAddress"] for name, n in networks.items() if n.get("IPAddress")},
        ports=_published((attrs.get("NetworkSettings") or {}).get("Ports")),
        cpus=host["NanoCpus"] / NANO if host.get("NanoCpus") else None,
        memory=host.get("Memory") or None,
        error=state.get("Error") or "",
        image_id=attrs.get("Image") or "",
    )


def network_state(attrs: Mapping[str, Any]) -> NetworkState:
    configs = (attrs.get("IPAM") or {}).get("Config") or [{}]
    return NetworkState(
        id=attrs["Id"],
        name=attrs["Name"],
        labels=dict(attrs.get("Labels") or {}),
        subnet=configs[0].get("Subnet"),
    )


def volume_state(attrs: Mapping[str, Any]) -> VolumeState:
    return VolumeState(
        name=attrs["Name"],
        labels=dict(attrs.get("Labels") or {}),
        mountpoint=attrs.get("Mountpoint"),
    )


def runtime_event(raw: Mapping[str, Any]) -> RuntimeEvent | None:
    """A container event; None for exec_* (every health check makes three of them)."""
    action: str = raw.get("Action") or raw.get("status") or ""
    if action.startswith("exec_"):
        return None
    actor = raw.get("Actor") or {}
    attributes = actor.get("Attributes") or {}
    labels = {k: v for k, v in attributes.items() if k not in _EVENT_ATTRIBUTES}
    return RuntimeEvent(
        container_id=actor.get("ID") or raw.get("id", ""), action=action, labels=labels
    )


def _memory_in_use(memory: Mapping[str, Any]) -> int:
    """Usage without the page cache, as the docker CLI computes it (cgroup v1 and v2)."""
    usage = int(memory.get("usage") or 0)
    stats = memory.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return usage - inactive if inactive < usage else usage


def _block_io(blkio: Mapping[str, Any]) -> tuple[int, int]:
    """Bytes read and written, summed over devices ("Read" on cgroup v1, "read" on v2)."""
    totals = {"read": 0, "write": 0}
    for entry in blkio.get("io_service_bytes_recursive") or ():
        op = str(entry.get("op", "")).lower()
        if op in totals:
            totals[op] += int(entry.get("value") or 0)
    return totals["read"], totals["write"]


def _net_io(networks: Mapping[str, Any]) -> tuple[int, int]:
    """Bytes received and sent, summed over interfaces (none on the host network)."""
    rx = sum(int(n.get("rx_bytes") or 0) for n in networks.values())
    tx = sum(int(n.get("tx_bytes") or 0) for n in networks.values())
    return rx, tx


def container_stats(raw: Mapping[str, Any]) -> ContainerStats:
    """CPU percent of one core from the cpu/precpu deltas; memory without the page cache;
    block and network I/O summed over devices and interfaces."""
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [1])
    percent = 0.0
    if system_delta > 0 and cpu_delta > 0:
        percent = cpu_delta / system_delta * online * 100.0
    memory = raw.get("memory_stats") or {}
    block_read, block_write = _block_io(raw.get("blkio_stats") or {})
    net_rx, net_tx = _net_io(raw.get("networks") or {})
    return ContainerStats(
        cpu_percent=percent,
        memory_bytes=_memory_in_use(memory),
        memory_limit=int(memory.get("limit") or 0),
        block_read=block_read,
        block_write=block_write,
        net_rx=net_rx,
        net_tx=net_tx,
    )


# ------------------------------------------------------------------------------ writing


def _label_filters(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{k}={v}" for k, v in labels.items()]} if labels else {}


def _host_config(api: Api, config: ContainerConfig) -> Any:
    bindings: dict[str, list[tuple[str, int | None]]] = {}
    for p in config.ports:
        bindings.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            (p.host_ip, p.host_port or None)
        )
    policy = {"Name": config.restart_policy} if config.restart_policy != "no" else None
    return api.create_host_config(
        port_bindings=bindings or None,
        nano_cpus=round(config.cpus * NANO) if config.cpus else None,
        mem_limit=config.memory or None,
        restart_policy=policy,
        init=config.init,
        runtime=config.runtime,
        mounts=[
            docker.types.Mount(m.path, m.volume, type="volume", read_only=m.read_only)
            for m in config.mounts
        ]
        or None,
        network_mode=config.networks[0] if config.networks else None,
    )


def _healthcheck(config: ContainerConfig) -> dict[str, Any] | None:
    check = config.healthcheck
    if check is None:
        return None
    return {
        "test": ["CMD", *check.command],
        "interval": round(check.interval * NANO),
        "timeout": round(check.timeout * NANO),
        "retries": check.retries,
        "start_period": round(check.start_period * NANO),
    }


def _create_kwargs(api: Api, config: ContainerConfig) -> dict[str, Any]:
    networking = None
    if config.networks and config.network_aliases:
        endpoint = api.create_endpoint_config(aliases=list(config.network_aliases))
        networking = api.create_networking_config({config.networks[0]: endpoint})
    return {
        "image": config.image,
        "name": config.name,
        "labels": dict(config.labels),
        "entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
        "command": list(config.command) if config.command is not None else None,
        "environment": dict(config.env) or None,
        "working_dir": config.workdir,
        "hostname": config.hostname,
        "ports": [(p.container_port, p.protocol) for p in config.ports] or None,
        "healthcheck": _healthcheck(config),
        "host_config": _host_config(api, config),
        "networking_config": networking,
        "detach": True,
    }


def _update_body(cpus: float | None, memory: int | None) -> dict[str, int]:
    body: dict[str, int] = {}
    if cpus:
        body["NanoCpus"] = round(cpus * NANO)
    if memory:
        # Docker refuses a memory limit above the swap limit it set at create (2x memory).
        body |= {"Memory": memory, "MemorySwap": 2 * memory}
    return body


def _update(api: Api, container_id: str, body: Mapping[str, int]) -> None:
    # The SDK's update_container() has no NanoCpus: post the engine's own body.
    url = api._url("/containers/{0}/update", container_id)
    api._result(api._post_json(url, data=dict(body)), True)


def _exec(api: Api, container_id: str, command: list[str], cap: int, seconds: float) -> ExecResult:
    """Run it, reading its multiplexed output off the hijacked socket ourselves: at most `cap`
    bytes, for at most `seconds`. Cut short, the connection is closed (a command that writes
    more then dies of SIGPIPE) and the command killed when the engine is on this machine."""
    deadline = time.monotonic() + seconds
    exec_id = api.exec_create(container_id, command, stdout=True, stderr=True)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)
    try:
        output, truncated, timed_out = _read_frames(raw, cap, deadline)
    finally:
        _close_hijacked(sock, raw)
    if truncated or timed_out:
        _kill_exec(api.exec_inspect(exec_id))
        return ExecResult(-1, output, truncated=truncated, timed_out=timed_out)
    code = api.exec_inspect(exec_id).get("ExitCode")
    return ExecResult(exit_code=-1 if code is None else int(code), output=output)


def _kill_exec(info: Mapping[str, Any]) -> None:
    """SIGKILL a running exec's process when it is visible here and in its container's cgroup.
    The Docker API cannot signal an exec; on a remote engine a silent command is left to end
    by itself (it holds no thread of ours)."""
    pid, container = info.get("Pid") or 0, str(info.get("ContainerID") or "")
    if not info.get("Running") or pid <= 0 or not container:
        return
    try:
        if container not in Path(f"/proc/{pid}/cgroup").read_text():
            return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return


def _close_hijacked(sock: Any, raw: Any) -> None:
    """Shut the exec's connection down (the engine then kills the command) and free it."""
    for close in (lambda: raw.shutdown(socket.SHUT_RDWR), raw.close, sock.close):
        with contextlib.suppress(OSError):
            close()
    response = getattr(sock, "_response", None)
    if response is not None:
        with contextlib.suppress(Exception):
            response.close()


def _read_frames(raw: Any, cap: int, deadline: float) -> tuple[bytes, bool, bool]:
    """(payload of stdout/stderr frames, cut at `cap`?, past `deadline`?)."""
    pending, out = bytearray(), bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(out), False, True
        raw.settimeout(left)
        try:
            chunk = raw.recv(EXEC_READ_BYTES)
        except TimeoutError:
            return bytes(out), False, True
        if not chunk:
            return bytes(out), False, False
        pending += chunk
        _take_frames(pending, out)
        if len(out) > cap:
            return bytes(out[:cap]), True, False


def _take_frames(pending: bytearray, out: bytearray) -> None:
    """Move every whole frame's payload (8-byte header: stream, 0, 0, 0, size) to `out`."""
    while len(pending) >= EXEC_FRAME_HEADER:
        size = int.from_bytes(pending[4:EXEC_FRAME_HEADER], "big")
        if len(pending) < EXEC_FRAME_HEADER + size:
            return
        out += pending[EXEC_FRAME_HEADER : EXEC_FRAME_HEADER + size]
        del pending[: EXEC_FRAME_HEADER + size]


def _open_logs(api: Api, container_id: str, tail: int | str, follow: bool) -> Any:
    # The SDK sends the logs request before it inspects the container, and leaves that
    # response open when the inspect fails: look first.
    api.inspect_container(container_id)
    return api.logs(container_id, stdout=True, stderr=True, stream=True, follow=follow, tail=tail)


def _host_info(api: Api, name: str) -> HostInfo:
    info, version = api.info(), api.version()
    return HostInfo(
        name=info.get("Name") or name,
        version=info.get("ServerVersion", ""),
        api_version=version.get("ApiVersion", ""),
        cpus=float(info.get("NCPU") or 0),
        memory=int(info.get("MemTotal") or 0),
        containers=int(info.get("Containers") or 0),
        runtimes=tuple(sorted(info.get("Runtimes") or {})),
    )


def tls_config(tls: Mapping[str, str] | None) -> Any:
    """`docker.tls.TLSConfig` from file paths `ca`, `cert`, `key`; False without TLS."""
    if not tls:
        return False
    cert = (tls["cert"], tls["key"]) if tls.get("cert") and tls.get("key") else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=tls.get("ca"), verify=True)


# ------------------------------------------------------------------------------ streams


class _End:
    """The stream ended (the engine closed it, or we did)."""


class _StreamPump:
    """Reads one blocking SDK stream in a daemon thread and hands its items to the loop.

    `close()` shuts the stream's socket down (the SDK's `CancellableStream.close`), which wakes
    the thread's blocked read, and drains the queue so a thread waiting for room moves on.
    """

    def __init__(self, open_stream: Callable[[], Any], name: str) -> None:
        self._open = open_stream
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue(STREAM_BUFFER)
        self._closed = threading.Event()
        self._stream: Any = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    async def get(self) -> Any:
        """The next item, `_End()` or the exception the stream failed with."""
        return await self._queue.get()

    def close(self) -> None:
        self._closed.set()
        if self._stream is not None:
            with contextlib.suppress(Exception):  # already closed or never fully opened
                self._stream.close()
        while not self._queue.empty():
            self._queue.get_nowait()

    def _run(self) -> None:
        end: Any = _End()
        try:
            self._stream = self._open()
            if self._closed.is_set():
                self._stream.close()
            for item in self._stream:
                if not self._put(item):
                    return
        except Exception as exc:  # handed to the consumer, who translates it
            end = exc
        finally:
            self._release()
        self._put(end)

    def _release(self) -> None:
        """Close the HTTP response and its connection (the SDK leaves both open)."""
        response = getattr(self._stream, "_response", None)
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()

    def _put(self, item: Any) -> bool:
        if self._closed.is_set():
            return False
        try:
            done = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        except RuntimeError:  # the loop is closed
            return False
        while not self._closed.is_set():
            with contextlib.suppress(concurrent.futures.TimeoutError):
                done.result(timeout=0.5)
                return True
        done.cancel()
        return False


# ------------------------------------------------------------------------------ the runtime


class DockerRuntime(DockerImages):
    """The `Runtime` port on the Docker engine at `endpoint` (unix:// or tcp:// with TLS).

    The client connects lazily, on the first call, and negotiates the API version then.
    `timeout` bounds each request (stop adds its grace period; `exec` waits at most that long
    for its command unless told; streams are unbounded). `exec` runs on threads of its own,
    `EXEC_SLOTS` at a time, keeps at most `max_output` bytes and stops the command past either
    bound. `stats` takes ~1 s: the engine waits for a second CPU sample. `update_resources`
    leaves a limit given as None as it is. `events` drops `exec_*` actions (every health
    check makes three) and Docker's own event attributes
    (name, image, exitCode, signal) from the labels; the container's labels include its
    image's, as in `inspect`.
    """

    def __init__(
        self,
        name: str,
        endpoint: str,
        *,
        tls: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self._tls = tls
        self._timeout = timeout
        self._api: Api = None
        self._connect_lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(POOL_SIZE, f"zun-docker-{name}")
        self._exec_pool = concurrent.futures.ThreadPoolExecutor(EXEC_SLOTS, f"zun-exec-{name}")
        self._execs = 0
        self._streams: set[_StreamPump] = set()

    # -- plumbing

    def _client(self) -> Api:
        with self._connect_lock:
            if self._api is None:
                self._api = docker.APIClient(
                    base_url=self.endpoint,
                    version="auto",
                    timeout=self._timeout,
                    tls=tls_config(self._tls),
                    max_pool_size=POOL_SIZE + 2,
                )
            return self._api

    async def _once(self, fn: Callable[[Api], T], what: str, extra: float) -> T:
        loop = asyncio.get_running_loop()
        bound = self._timeout + extra + BOUND_SLACK_S
        try:
            async with asyncio.timeout(bound):  # not wait_for: it can swallow a cancel (3.11)
                return await loop.run_in_executor(self._pool, lambda: fn(self._client()))
        except Exception as exc:
            raise translate(exc, what) from exc

    async def _call(
        self, fn: Callable[[Api], T], what: str, *, retry: bool = True, extra: float = 0.0
    ) -> T:
        """Run `fn(api)` on the pool, bounded, translated, retried if `retry`."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(RETRY_ATTEMPTS if retry else 1)
            | stop_after_delay(2 * (self._timeout + extra)),
            wait=wait_exponential(multiplier=0.1, max=RETRY_WAIT_MAX_S),
            reraise=True,
        )
        return await retrying(self._once, fn, what, extra)

    async def _tolerant(
        self, fn: Callable[[Api], object], what: str, ok: Callable[[BaseException], bool]
    ) -> None:
        """Like `_call`, but the SDK errors `ok` accepts mean "already done"."""

        def run(api: Api) -> None:
            try:
                fn(api)
            except docker.errors.APIError as exc:
                if not ok(exc):
                    raise

        await self._call(run, what)

    async def _stream(
        self, open_stream: Callable[[Api], Any], what: str
    ) -> AsyncGenerator[Any, None]:
        """Items of an SDK stream; returns when the engine ends it, raises what it fails with."""
        api = await self._call(lambda api: api, what)
        pump = _StreamPump(lambda: open_stream(api), f"zun-docker-{what}-{self.name}")
        self._streams.add(pump)
        pump.start()
        try:
            while not isinstance(item := await pump.get(), _End):
                if isinstance(item, BaseException):
                    raise translate(item, what) from item
                yield item
        finally:
            pump.close()
            self._streams.discard(pump)

    # -- host

    async def info(self) -> HostInfo:
        return await self._call(lambda api: _host_info(api, self.name), "info")

    async def image_exists(self, image: str) -> bool:
        try:
            await self._call(lambda api: api.inspect_image(image), f"image {image}")
        except (NotFoundError, PermanentError):
            return False
        return True

    # -- containers

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerState]:
        summaries = await self._call(
            lambda api: api.containers(all=True, filters=_label_filters(labels)), "containers"
        )
        limit = asyncio.Semaphore(POOL_SIZE)  # so no inspect waits for a thread on its clock

        async def inspect(container_id: str) -> ContainerState | None:
            async with limit:
                return await self.inspect(container_id)

        states = await asyncio.gather(*(inspect(s["Id"]) for s in summaries))
        return [s for s in states if s is not None]  # None: removed since the listing

    async def inspect(self, name_or_id: str) -> ContainerState | None:
        try:
            attrs = await self._call(
                lambda api: api.inspect_container(name_or_id), f"container {name_or_id}"
            )
        except NotFoundError:
            return None
        return container_state(attrs)

    async def _inspect_existing(self, container_id: str) -> ContainerState:
        state = await self.inspect(container_id)
        if state is None:
            raise NotFoundError(f"container {container_id} vanished")
        return state

    async def create(self, config: ContainerConfig) -> ContainerState:
        what = f"create container {config.name}"
        for network in config.networks:
            if await self._network(network) is None:
                raise NotFoundError(f"{what}: network {network} not found")
        created = await self._call(
            lambda api: api.create_container(**_create_kwargs(api, config)), what, retry=False
        )
        try:
            await self._connect_networks(created["Id"], config)
        except ZunError:
            await self.remove(created["Id"])
            raise
        return await self._inspect_existing(created["Id"])

    async def _connect_networks(self, container_id: str, config: ContainerConfig) -> None:
        for network in config.networks[1:]:
            await self._connect(container_id, network, list(config.network_aliases))

    async def _connect(self, container_id: str, network: str, aliases: list[str]) -> None:
        await self._tolerant(
            lambda api: api.connect_container_to_network(
                container_id, network, aliases=aliases or None
            ),
            f"connect {container_id} to {network}",
            lambda exc: _api_error_says(exc, "already exists"),
        )

    async def start(self, container_id: str) -> None:
        await self._call(lambda api: api.start(container_id), f"start {container_id}")

    async def stop(self, container_id: str, grace: float = 10.0) -> None:
        await self._call(
            lambda api: api.stop(container_id, timeout=max(0, math.ceil(grace))),
            f"stop {container_id}",
            extra=grace,
        )

    async def pause(self, container_id: str) -> None:
        await self._tolerant(
            lambda api: api.pause(container_id),
            f"pause {container_id}",
            lambda exc: _api_error_says(exc, "already paused"),
        )

    async def unpause(self, container_id: str) -> None:
        await self._tolerant(
            lambda api: api.unpause(container_id),
            f"unpause {container_id}",
            lambda exc: _api_error_says(exc, "is not paused"),
        )

    async def remove(self, container_id: str) -> None:
        await self._tolerant(
            lambda api: api.remove_container(container_id, force=True, v=True),
            f"remove {container_id}",
            lambda exc: (
                isinstance(exc, docker.errors.NotFound)
                or _api_error_says(exc, "already in progress")
            ),
        )

    async def update_resources(
        self, container_id: str, cpus: float | None, memory: int | None
    ) -> None:
        body = _update_body(cpus, memory)
        if body:
            await self._call(lambda api: _update(api, container_id, body), f"update {container_id}")

    # -- networks

    async def _network(self, name: str) -> NetworkState | None:
        try:
            attrs = await self._call(lambda api: api.inspect_network(name), f"network {name}")
        except NotFoundError:
            return None
        # The engine also matches an ID prefix: a network named otherwise is not this one.
        return network_state(attrs) if attrs["Name"] == name else None

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], *, internal: bool = False
    ) -> NetworkState:
        if (existing := await self._network(name)) is None:
            with contextlib.suppress(ConflictError):  # created meanwhile, by us or another
                await self._call(
                    lambda api: api.create_network(
                        name,
                        driver="bridge",
                        internal=internal,
                        labels=dict(labels),
                        check_duplicate=True,
                    ),
                    f"create network {name}",
                )
            if (existing := await self._network(name)) is None:
                raise NotFoundError(f"network {name} vanished after create")
        return ours(existing, existing.labels, labels, f"network {name}")

    async def remove_network(self, name: str, labels: Mapping[str, str]) -> None:
        network = await self._network(name)
        if network is not None and carries(network.labels, labels):
            await self._tolerant(
                lambda api: api.remove_network(network.id),
                f"remove network {name}",
                lambda exc: isinstance(exc, docker.errors.NotFound),
            )

    async def list_networks(self, labels: Mapping[str, str]) -> list[NetworkState]:
        found = await self._call(
            lambda api: api.networks(filters=_label_filters(labels)), "networks"
        )
        return [network_state(n) for n in found]

    # -- volumes

    async def _volume(self, name: str) -> VolumeState | None:
        try:
            attrs = await self._call(lambda api: api.inspect_volume(name), f"volume {name}")
        except NotFoundError:
            return None
        return volume_state(attrs)

    async def ensure_volume(self, name: str, labels: Mapping[str, str]) -> VolumeState:
        # The engine's create returns the existing volume of that name unchanged.
        attrs = await self._call(
            lambda api: api.create_volume(name, driver="local", labels=dict(labels)),
            f"create volume {name}",
        )
        volume = volume_state(attrs)
        return ours(volume, volume.labels, labels, f"volume {name}")

    async def remove_volume(self, name: str, labels: Mapping[str, str]) -> None:
        volume = await self._volume(name)
        if volume is not None and carries(volume.labels, labels):
            await self._tolerant(
                lambda api: api.remove_volume(name),
                f"remove volume {name}",
                lambda exc: isinstance(exc, docker.errors.NotFound),
            )

    async def list_volumes(self, labels: Mapping[str, str]) -> list[VolumeState]:
        found = await self._call(lambda api: api.volumes(filters=_label_filters(labels)), "volumes")
        return [volume_state(v) for v in found.get("Volumes") or ()]

    # -- streams and the rest

    def events(self, labels: Mapping[str, str]) -> AsyncIterator[RuntimeEvent]:
        # "From now on" means from this call, not from the first __anext__: the engine replays
        # what happened since then from its event buffer.
        since = f"{time.time():.9f}"
        filters = {"type": ["container"], **_label_filters(labels)}
        return self._events(since, filters)

    async def _events(self, since: str, filters: Mapping[str, Any]) -> AsyncIterator[RuntimeEvent]:
        stream = self._stream(
            lambda api: api.events(since=since, filters=dict(filters), decode=True), "events"
        )
        async with contextlib.aclosing(stream):
            async for raw in stream:
                if (event := runtime_event(raw)) is not None:
                    yield event
        raise TransientError(f"{self.name}: event stream ended (engine went away)")

    def logs(
        self, container_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[bytes]:
        return self._logs(container_id, "all" if tail is None else tail, follow)

    async def _logs(self, container_id: str, tail: int | str, follow: bool) -> AsyncIterator[bytes]:
        stream = self._stream(lambda api: _open_logs(api, container_id, tail, follow), "logs")
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                yield chunk

    async def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        max_output: int = EXEC_OUTPUT_BYTES,
        max_seconds: float | None = None,
    ) -> ExecResult:
        if self._execs >= EXEC_SLOTS:
            raise TransientError(f"{self.name}: {EXEC_SLOTS} execs running already; retry later")
        seconds = self._timeout if max_seconds is None else max_seconds
        api = await self._call(lambda api: api, "exec")
        loop = asyncio.get_running_loop()
        self._execs += 1
        try:
            async with asyncio.timeout(seconds + self._timeout + BOUND_SLACK_S):
                return await loop.run_in_executor(
                    self._exec_pool, _exec, api, container_id, command, max_output, seconds
                )
        except Exception as exc:
            raise translate(exc, f"exec in {container_id}") from exc
        finally:
            self._execs -= 1

    async def stats(self, container_id: str) -> ContainerStats:
        raw = await self._call(
            lambda api: api.stats(container_id, stream=False), f"stats {container_id}"
        )
        return container_stats(raw)

    async def close(self) -> None:
        for pump in list(self._streams):
            pump.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._exec_pool.shutdown(wait=False, cancel_futures=True)
        if self._api is not None:
            self._api.close()


def docker_runtime_factory(
    name: str, endpoint: str, *, tls: Mapping[str, str] | None = None
) -> DockerRuntime:
    """The `RuntimeFactory` for Docker engines."""
    return DockerRuntime(name, endpoint, tls=tls)


_FACTORY: RuntimeFactory = docker_runtime_factory  # mypy checks the signature
