"""`FakeRuntime`: the `Runtime` port in memory, behaving like Docker where reconcilers can see it.

Modelled on Docker 20.10 as `tests/unit/test_runtime_contract.py` checks it against the real
engine: deterministic ids; status transitions and the events Docker emits for them (create,
start, kill/die/stop, pause, unpause, update, destroy, `health_status: ...`); images present or
not; name conflicts; the engine's validation of names, runtimes, restart policies and limits;
published ports (engine-picked from a counter when `host_port` is None, "port is already
allocated" on a clash); IPs per network; networks and volumes with Docker's in-use rules
(a network is in use while a running container is attached; a volume while any container
mounts it); image labels merged into container labels.

Containers run nothing. `exec` understands a little busybox shell (`echo`, `cat`, `exit`,
`hostname`, `pwd`, `wget URL`, `$VAR`, `> file`, `sh -c "a; b"`, `timeout N cmd`): enough to see
the environment, files on volumes and which containers reach which by name. `logs` is what the
image prints at start (`add_image(output=...)`) plus `append_log`.

Images are removed a tag at a time, refused while a container was made from the image (the
`Runtime.remove_image` contract, held to Docker by tests/unit/test_image_contract.py).

Test hooks: `add_image`, `tag_image`, `fail_next(method, exc)`, `unreachable`, `crash`,
`set_health`, `append_log`, `exec_handler`. Pulls come from the `FakeRegistry`s given
(fake_images.py), by registry host; a host with none is unknown, as Docker Hub is to an engine
off the internet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import re
import shlex
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from zun_controller.drivers.runtime.base import (
    EXEC_OUTPUT_BYTES,
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    HostInfo,
    ImageInfo,
    ImageUser,
    NetworkState,
    PublishedPort,
    RegistryAuth,
    RuntimeEvent,
    RuntimeFactory,
    VolumeState,
    carries,
    image_users,
    ours,
    tagged,
)
from zun_controller.drivers.runtime.fake_images import (
    PULL,
    FakeRegistry,
    RemoteImage,
    image_id,
    local_info,
)
from zun_controller.errors import ConflictError, NotFoundError, PermanentError, TransientError
from zun_controller.models.image import parse_reference

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_RESTART_POLICIES = frozenset({"no", "always", "on-failure", "unless-stopped"})
_MIN_MEMORY = 6 * 1024 * 1024
_LIVE = frozenset({ContainerStatus.RUNNING, ContainerStatus.PAUSED, ContainerStatus.RESTARTING})
_FIRST_HOST_PORT = 49153
_PREDEFINED_NETWORKS = ("bridge", "host", "none")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ExecHandler = Callable[[ContainerState, list[str]], ExecResult | None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Image:
    labels: Mapping[str, str]
    output: bytes
    exit_code: int | None  # exits right after start, like zun-test/httpd:broken
    id: str = ""
    remote: RemoteImage | None = None  # what it was pulled as, if it was


@dataclass
class _Network:
    id: str
    name: str
    labels: Mapping[str, str]
    internal: bool
    prefix: str  # the first two octets of its /16
    hosts: Iterator[int] = field(default_factory=lambda: itertools.count(2))

    @property
    def subnet(self) -> str:
        return f"{self.prefix}.0.0/16"

    def next_ip(self) -> str:
        host = next(self.hosts)
        return f"{self.prefix}.{host // 256}.{host % 256}"


@dataclass
class _Volume:
    name: str
    labels: Mapping[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class _Container:
    id: str
    config: ContainerConfig
    labels: Mapping[str, str]
    networks: list[str]
    status: ContainerStatus = ContainerStatus.CREATED
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0
    health: str | None = None
    ips: dict[str, str] = field(default_factory=dict)
    ports: tuple[PublishedPort, ...] = ()
    cpus: float | None = None
    memory: int | None = None
    error: str = ""
    image_id: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    log: bytearray = field(default_factory=bytearray)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False

    def touch(self) -> None:
        """Wake the `logs(follow=True)` readers."""
        self.changed.set()
        self.changed = asyncio.Event()

    def state(self) -> ContainerState:
        return ContainerState(
            id=self.id,
            name=self.config.name,
            image=self.config.image,
            labels=dict(self.labels),
            status=self.status,
            exit_code=self.exit_code,
            started_at=self.started_at,
            finished_at=self.finished_at,
            restart_count=self.restart_count,
            health=self.health,
            ips=dict(self.ips),
            ports=self.ports,
            cpus=self.cpus,
            memory=self.memory,
            error=self.error,
            image_id=self.image_id,
        )


class _Subscription:
    """One `events()` iterator: registered when created, so it sees everything from then on."""

    def __init__(self, labels: Mapping[str, str], unsubscribe: Callable[[_Subscription], None]):
        self.labels = dict(labels)
        self._queue: asyncio.Queue[RuntimeEvent | BaseException] = asyncio.Queue()
        self._unsubscribe = unsubscribe
        self._closed = False

    def deliver(self, item: RuntimeEvent | BaseException) -> None:
        self._queue.put_nowait(item)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> RuntimeEvent:
        if self._closed:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        self._unsubscribe(self)


class FakeRuntime:
    """An engine in memory; `images` are present from the start (see `add_image`)."""

    def __init__(
        self,
        name: str = "fake",
        *,
        images: Iterable[str] = (),
        runtimes: Iterable[str] = ("runc", "io.containerd.runc.v2"),
        cpus: float = 2.0,
        memory: int = 8 * 1024**3,
        clock: Callable[[], datetime] = _utc_now,
        registries: Iterable[FakeRegistry] = (),
    ) -> None:
        self.name = name
        self.registries = {r.host: r for r in registries}
        self.runtimes = tuple(runtimes)
        self.cpus = cpus
        self.memory = memory
        self.exec_handler: ExecHandler | None = None
        self._clock = clock
        self._ids = itertools.count(1)
        self._host_ports = itertools.count(_FIRST_HOST_PORT)
        self._images: dict[str, _Image] = {}
        self._containers: dict[str, _Container] = {}
        self._networks: dict[str, _Network] = {}
        self._volumes: dict[str, _Volume] = {}
        self._subscriptions: set[_Subscription] = set()
        self._failures: dict[str, list[BaseException]] = {}
        self._unreachable = False
        for image in images:
            self.add_image(image)
        for network in _PREDEFINED_NETWORKS:
            self._add_network(network, {}, internal=False)

    # -- test hooks

    def add_image(
        self,
        image: str,
        *,
        labels: Mapping[str, str] | None = None,
        output: bytes = b"",
        exit_code: int | None = None,
    ) -> None:
        """Make `image` present; its containers print `output` at start, then exit with
        `exit_code` if it is not None."""
        image_id = "sha256:" + hashlib.sha256(f"{self.name}/{image}".encode()).hexdigest()
        self._images[image] = _Image(dict(labels or {}), output, exit_code, image_id)

    def tag_image(self, image: str, target: str) -> None:
        """As `docker tag`: `target` names the image `image` names (same id)."""
        self._images[target] = self._images[self._tag_key(image)]

    def _tag_key(self, image: str) -> str:
        """The name `image` (a tag reference) is kept under; `NotFoundError` when none."""
        ref = tagged(image)
        for name in self._images:
            if "@" not in name and tagged(name) == ref:
                return name
        raise NotFoundError(f"No such image: {ref}")

    def fail_next(self, method: str, exc: BaseException) -> None:
        """The next call of `method` (e.g. "start") raises `exc`; calls queue up."""
        if not callable(getattr(self, method, None)):
            raise ValueError(f"FakeRuntime has no method {method!r}")
        self._failures.setdefault(method, []).append(exc)

    @property
    def unreachable(self) -> bool:
        """While True every call raises `TransientError`; open event streams end with it."""
        return self._unreachable

    @unreachable.setter
    def unreachable(self, value: bool) -> None:
        self._unreachable = value
        if value:
            for subscription in list(self._subscriptions):
                subscription.deliver(TransientError(f"{self.name}: engine went away"))
                self._subscriptions.discard(subscription)

    def crash(self, container_id: str, exit_code: int = 1) -> None:
        """The container's process exits by itself; the restart policy applies."""
        container = self._get(container_id)
        if container.status in _LIVE:
            self._die(container, exit_code)
            self._restart(container, exit_code, crash_loop=False)

    def set_health(self, container_id: str, status: str) -> None:
        container = self._get(container_id)
        container.health = status
        self._emit(container, f"health_status: {status}")

    def append_log(self, container_id: str, data: bytes) -> None:
        container = self._get(container_id)
        container.log += data
        container.touch()

    # -- plumbing

    def _enter(self, method: str) -> None:
        if self._unreachable:
            raise TransientError(f"{self.name}: engine unreachable")
        if queued := self._failures.get(method):
            raise queued.pop(0)

    def _new_id(self, kind: str) -> str:
        return hashlib.sha256(f"{self.name}/{kind}/{next(self._ids)}".encode()).hexdigest()

    def _find(self, name_or_id: str) -> _Container | None:
        for container in self._containers.values():
            if name_or_id in (container.id, container.config.name):
                return container
        prefixed = [c for c in self._containers.values() if c.id.startswith(name_or_id)]
        return prefixed[0] if len(prefixed) == 1 else None

    def _get(self, name_or_id: str) -> _Container:
        container = self._find(name_or_id)
        if container is None:
            raise NotFoundError(f"No such container: {name_or_id}")
        return container

    def _emit(self, container: _Container, action: str) -> None:
        event = RuntimeEvent(container.id, action, dict(container.labels))
        for subscription in list(self._subscriptions):
            if subscription.labels.items() <= container.labels.items():
                subscription.deliver(event)

    # -- host

    async def info(self) -> HostInfo:
        self._enter("info")
        return HostInfo(
            name=self.name,
            version="20.10.24+fake",
            api_version="1.41",
            cpus=self.cpus,
            memory=self.memory,
            containers=len(self._containers),
            runtimes=tuple(sorted(self.runtimes)),
        )

    async def image_exists(self, image: str) -> bool:
        self._enter("image_exists")
        return image in self._images

    async def inspect_image(self, image: str) -> ImageInfo | None:
        self._enter("inspect_image")
        name = image if image in self._images else None
        name = name or next((n for n, i in self._images.items() if i.id == image), None)
        if name is None:
            return None
        found = self._images[name]
        return local_info(name, found.remote, found.id)

    async def list_images(self) -> list[ImageInfo]:
        self._enter("list_images")
        by_id: dict[str, list[str]] = {}
        for name, found in self._images.items():
            by_id.setdefault(found.id, []).append(name)
        return [self._listed(names) for names in by_id.values()]

    def _listed(self, names: list[str]) -> ImageInfo:
        found = self._images[names[0]]
        info = local_info(names[0], found.remote, found.id)
        tags = tuple(
            n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest" for n in names if "@" not in n
        )
        return dataclasses.replace(info, repo_tags=tags)

    async def pull_image(self, image: str, auth: RegistryAuth | None, within: float) -> ImageInfo:
        self._enter("pull_image")
        host = parse_reference(image).registry
        registry = self.registries.get(host)
        if registry is None:
            raise PermanentError(PULL, f"pulling {image}: dial tcp: lookup {host}: no such host")
        try:
            async with asyncio.timeout(within):
                remote = await registry.serve(image, auth)
        except TimeoutError:
            raise PermanentError(PULL, f"pulling {image}: not done after {within:g} s") from None
        pulled = _Image(dict(remote.labels), remote.output, remote.exit_code, image_id(remote))
        pulled.remote = remote
        self._images[image] = pulled
        return local_info(image, remote, pulled.id)

    async def remove_image(self, image: str) -> None:
        self._enter("remove_image")
        if "@" in image:
            raise PermanentError("InvalidConfig", f"remove {image}: name a tag, not a digest")
        key = self._tag_key(image)
        found = self._images[key]
        tags = [n for n, i in self._images.items() if i.id == found.id and "@" not in n]
        containers = (
            ImageUser(c.id, c.config.name, c.status.value, c.image_id, c.config.image)
            for c in self._containers.values()
        )
        if refusal := image_users(tagged(image), found.id, len(tags) == 1, containers):
            raise refusal
        del self._images[key]
        # Docker's rule: a repository left with digest references only loses those too
        repository = _repository(key)
        same = [
            n for n, i in self._images.items() if i.id == found.id and _repository(n) == repository
        ]
        if all("@" in n for n in same):
            for name in same:
                del self._images[name]

    # -- containers

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerState]:
        self._enter("list_containers")
        wanted = labels.items()
        return [c.state() for c in self._containers.values() if wanted <= c.labels.items()]

    async def inspect(self, name_or_id: str) -> ContainerState | None:
        self._enter("inspect")
        container = self._find(name_or_id)
        return None if container is None else container.state()

    async def create(self, config: ContainerConfig) -> ContainerState:
        self._enter("create")
        for network in config.networks:
            if network not in self._networks:
                raise NotFoundError(f"create container {config.name}: network {network} not found")
        self._validate(config)
        image = self._images.get(config.image)
        if image is None:
            raise PermanentError("ImageNotFound", f"No such image: {config.image}")
        if self._find(config.name) is not None:
            raise ConflictError(f'The container name "/{config.name}" is already in use')
        for mount in config.mounts:  # Docker creates a missing named volume, unlabelled
            self._volumes.setdefault(mount.volume, _Volume(mount.volume, {}))
        container = _Container(
            id=self._new_id("container"),
            config=config,
            labels={**image.labels, **config.labels},
            networks=list(config.networks) or ["bridge"],
            cpus=config.cpus or None,
            memory=config.memory or None,
            image_id=image.id,
        )
        self._containers[container.id] = container
        self._emit(container, "create")
        return container.state()

    def _validate(self, config: ContainerConfig) -> None:
        if not _NAME.match(config.name):
            raise PermanentError("InvalidConfig", f"Invalid container name ({config.name})")
        if config.runtime is not None and config.runtime not in self.runtimes:
            raise PermanentError("RuntimeNotFound", f"Unknown runtime specified {config.runtime}")
        if config.restart_policy not in _RESTART_POLICIES:
            raise PermanentError("InvalidConfig", f"invalid restart policy {config.restart_policy}")
        self._validate_limits(config.cpus, config.memory)

    def _validate_limits(self, cpus: float | None, memory: int | None) -> None:
        if cpus and not 0.01 <= cpus <= self.cpus:
            raise PermanentError("InvalidConfig", f"Range of CPUs is from 0.01 to {self.cpus:.2f}")
        if memory and memory < _MIN_MEMORY:
            raise PermanentError("InvalidConfig", "Minimum memory limit allowed is 6MB")

    async def start(self, container_id: str) -> None:
        self._enter("start")
        container = self._get(container_id)
        if container.status is ContainerStatus.PAUSED:
            raise ConflictError("cannot start a paused container, try unpause instead")
        if container.status in (ContainerStatus.CREATED, ContainerStatus.EXITED):
            self._run(container)

    def _run(self, container: _Container) -> None:
        try:
            self._check_start(container)
            container.ports = self._publish(container)
        except (NotFoundError, PermanentError) as exc:  # Docker keeps why, status `created`
            container.error, container.exit_code = str(exc), 128
            raise
        container.ips = {n: self._networks[n].next_ip() for n in container.networks}
        container.status, container.exit_code, container.error = ContainerStatus.RUNNING, None, ""
        container.started_at = self._clock()
        container.health = "starting" if container.config.healthcheck else None
        self._emit(container, "start")
        image = self._images.get(container.config.image)
        if image is not None:
            container.log += image.output
            container.touch()
            if image.exit_code is not None:
                self._die(container, image.exit_code)
                self._restart(container, image.exit_code, crash_loop=True)

    def _check_start(self, container: _Container) -> None:
        for network in container.networks:
            if network not in self._networks:
                raise NotFoundError(f"network {network} not found")

    def _publish(self, container: _Container) -> tuple[PublishedPort, ...]:
        taken = {
            (p.host_ip, p.host_port, p.protocol)
            for c in self._containers.values()
            if c.status in _LIVE
            for p in c.ports
        }
        published = []
        for mapping in container.config.ports:
            port = mapping.host_port or next(self._host_ports)
            if (mapping.host_ip, port, mapping.protocol) in taken:
                raise PermanentError(
                    "InvalidConfig",
                    f"Bind for {mapping.host_ip}:{port} failed: port is already allocated",
                )
            taken.add((mapping.host_ip, port, mapping.protocol))
            published.append(
                PublishedPort(mapping.container_port, mapping.protocol, mapping.host_ip, port)
            )
        return tuple(published)

    def _die(self, container: _Container, exit_code: int) -> None:
        container.status, container.exit_code = ContainerStatus.EXITED, exit_code
        container.finished_at = self._clock()
        container.ports, container.ips, container.health = (), {}, None
        self._emit(container, "die")
        container.touch()

    def _restart(self, container: _Container, exit_code: int, *, crash_loop: bool) -> None:
        """The restart policy after an exit the engine did not ask for."""
        policy = container.config.restart_policy
        if policy in ("always", "unless-stopped") or (policy == "on-failure" and exit_code):
            container.restart_count += 1
            if crash_loop:  # Docker keeps restarting it, with a growing delay
                container.status = ContainerStatus.RESTARTING
            else:
                self._run(container)

    async def stop(self, container_id: str, grace: float = 10.0) -> None:
        self._enter("stop")
        container = self._get(container_id)
        if container.status in _LIVE:
            self._emit(container, "kill")
            self._die(container, 0)  # the test images handle SIGTERM; no restart after a stop
            self._emit(container, "stop")

    async def pause(self, container_id: str) -> None:
        self._enter("pause")
        container = self._get(container_id)
        if container.status is ContainerStatus.RUNNING:
            container.status = ContainerStatus.PAUSED
            self._emit(container, "pause")
        elif container.status is not ContainerStatus.PAUSED:
            raise ConflictError(f"Container {container.id} is not running")

    async def unpause(self, container_id: str) -> None:
        self._enter("unpause")
        container = self._get(container_id)
        if container.status is ContainerStatus.PAUSED:
            container.status = ContainerStatus.RUNNING
            self._emit(container, "unpause")

    async def remove(self, container_id: str) -> None:
        self._enter("remove")
        container = self._find(container_id)
        if container is None:
            return
        if container.status in _LIVE:
            self._emit(container, "kill")
            self._emit(container, "die")
        del self._containers[container.id]
        container.removed = True
        container.touch()
        self._emit(container, "destroy")

    async def update_resources(
        self, container_id: str, cpus: float | None, memory: int | None
    ) -> None:
        self._enter("update_resources")
        container = self._get(container_id)
        self._validate_limits(cpus, memory)
        container.cpus = cpus or container.cpus
        container.memory = memory or container.memory
        self._emit(container, "update")

    # -- networks

    def _add_network(self, name: str, labels: Mapping[str, str], *, internal: bool) -> _Network:
        prefix = f"172.{17 + len(self._networks)}"
        network = _Network(self._new_id("network"), name, dict(labels), internal, prefix)
        self._networks[name] = network
        return network

    @staticmethod
    def _network_state(network: _Network) -> NetworkState:
        return NetworkState(network.id, network.name, dict(network.labels), network.subnet)

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], *, internal: bool = False
    ) -> NetworkState:
        self._enter("ensure_network")
        network = self._networks.get(name) or self._add_network(name, labels, internal=internal)
        return ours(self._network_state(network), network.labels, labels, f"network {name}")

    async def remove_network(self, name: str, labels: Mapping[str, str]) -> None:
        self._enter("remove_network")
        if name not in self._networks or not carries(self._networks[name].labels, labels):
            return
        if name in _PREDEFINED_NETWORKS:
            raise ConflictError(f"{name} is a pre-defined network and cannot be removed")
        if any(name in c.networks and c.status in _LIVE for c in self._containers.values()):
            raise ConflictError(
                f"error while removing network: network {name} has active endpoints"
            )
        del self._networks[name]

    async def list_networks(self, labels: Mapping[str, str]) -> list[NetworkState]:
        self._enter("list_networks")
        wanted = labels.items()
        return [
            self._network_state(n) for n in self._networks.values() if wanted <= n.labels.items()
        ]

    # -- volumes

    @staticmethod
    def _volume_state(volume: _Volume) -> VolumeState:
        mountpoint = f"/var/lib/docker/volumes/{volume.name}/_data"
        return VolumeState(volume.name, dict(volume.labels), mountpoint)

    async def ensure_volume(self, name: str, labels: Mapping[str, str]) -> VolumeState:
        self._enter("ensure_volume")
        volume = self._volumes.setdefault(name, _Volume(name, dict(labels)))
        return ours(self._volume_state(volume), volume.labels, labels, f"volume {name}")

    async def remove_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self._enter("remove_volume")
        if name not in self._volumes or not carries(self._volumes[name].labels, labels):
            return
        users = [c.id for c in self._containers.values() if name in _volumes_of(c)]
        if users:
            raise ConflictError(f"remove {name}: volume is in use - {users}")
        del self._volumes[name]

    async def list_volumes(self, labels: Mapping[str, str]) -> list[VolumeState]:
        self._enter("list_volumes")
        wanted = labels.items()
        return [self._volume_state(v) for v in self._volumes.values() if wanted <= v.labels.items()]

    # -- streams and the rest

    def events(self, labels: Mapping[str, str]) -> AsyncIterator[RuntimeEvent]:
        subscription = _Subscription(labels, self._subscriptions.discard)
        try:
            self._enter("events")
        except BaseException as exc:  # raised by the iterator, as the real engine's would be
            subscription.deliver(exc)
            return subscription
        self._subscriptions.add(subscription)
        return subscription

    def logs(
        self, container_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[bytes]:
        return self._logs(container_id, tail, follow)

    async def _logs(
        self, container_id: str, tail: int | None, follow: bool
    ) -> AsyncIterator[bytes]:
        self._enter("logs")
        container = self._get(container_id)
        if chunk := _tail(bytes(container.log), tail):
            yield chunk
        sent = len(container.log)
        while follow and container.status in _LIVE and not container.removed:
            await container.changed.wait()
            if chunk := bytes(container.log[sent:]):
                yield chunk
            sent = len(container.log)

    async def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        max_output: int = EXEC_OUTPUT_BYTES,
        max_seconds: float | None = None,
    ) -> ExecResult:
        result = await self._exec(container_id, command)
        if len(result.output) <= max_output:
            return result
        return ExecResult(-1, result.output[:max_output], truncated=True)

    async def _exec(self, container_id: str, command: list[str]) -> ExecResult:
        self._enter("exec")
        container = self._get(container_id)
        if container.status is not ContainerStatus.RUNNING:
            raise ConflictError(f"Container {container.id} is not running")
        if self.exec_handler is not None:
            result = self.exec_handler(container.state(), list(command))
            if result is not None:
                return result
        return _Shell(self, container).run(command)

    async def stats(self, container_id: str) -> ContainerStats:
        self._enter("stats")
        container = self._get(container_id)
        if container.status is not ContainerStatus.RUNNING:
            return ContainerStats(0.0, 0, 0)
        return ContainerStats(0.5, 1024 * 1024, container.memory or self.memory)

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.close()

    # -- what a container sees from inside (for _Shell)

    def volume_files(self, name: str) -> dict[str, bytes]:
        return self._volumes.setdefault(name, _Volume(name, {})).files

    def peer(self, caller: _Container, host: str) -> _Container | None:
        """The running container `host` names from `caller`: by name or alias on a shared
        user-defined network (Docker's embedded DNS), or by IP on any shared network."""
        for other in self._containers.values():
            if other.status is not ContainerStatus.RUNNING:
                continue
            for network in set(caller.networks) & set(other.networks):
                names = {other.config.name, *other.config.network_aliases}
                if other.ips.get(network) == host or (
                    host in names and network not in _PREDEFINED_NETWORKS
                ):
                    return other
        return None


def _repository(name: str) -> str:
    """The repository of an image name (tag or digest dropped)."""
    if "@" in name:
        return name.split("@", 1)[0]
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


def _volumes_of(container: _Container) -> set[str]:
    return {m.volume for m in container.config.mounts}


def _tail(data: bytes, tail: int | None) -> bytes:
    if tail is None:
        return data
    return b"".join(data.splitlines(keepends=True)[-tail:]) if tail > 0 else b""


def _hostname(container: _Container) -> str:
    return container.config.hostname or container.id[:12]


class _Shell:
    """Just enough of busybox sh to look at a fake container from inside."""

    def __init__(self, runtime: FakeRuntime, container: _Container) -> None:
        self._runtime = runtime
        self._container = container
        self._env = {
            "PATH": _PATH,
            "HOSTNAME": _hostname(container),
            **container.config.env,
        }

    def run(self, argv: list[str]) -> ExecResult:
        out = bytearray()
        code = self._command(argv, out)
        return ExecResult(code, bytes(out))

    def _command(self, argv: list[str], out: bytearray) -> int:
        if argv[:1] == ["timeout"]:
            argv = argv[2:]
        if argv[:2] == ["sh", "-c"] and len(argv) > 2:
            return self._script(argv[2], out)
        builtins: dict[str, Callable[[list[str], bytearray], int]] = {
            "echo": self._echo,
            "cat": self._cat,
            "hostname": lambda _, o: self._print(o, _hostname(self._container)),
            "pwd": lambda _, o: self._print(o, self._container.config.workdir or "/"),
            "wget": self._wget,
            "true": lambda _, o: 0,
            "false": lambda _, o: 1,
        }
        builtin = builtins.get(argv[0]) if argv else None
        if builtin is None:
            return self._print(out, f"sh: {argv[0] if argv else ''}: not found", 127)
        return builtin(argv[1:], out)

    def _script(self, script: str, out: bytearray) -> int:
        code = 0
        for line in script.split(";"):
            argv = [_VAR.sub(self._expand, word) for word in shlex.split(line)]
            if argv[:1] == ["exit"]:
                return int(argv[1]) if len(argv) > 1 else code
            argv, target = _redirection(argv)
            buffer = bytearray()
            code = self._command(argv, buffer) if argv else code
            if target is None:
                out += buffer
            else:
                self._write(target, bytes(buffer))
        return code

    def _expand(self, match: re.Match[str]) -> str:
        return self._env.get(match.group(1) or match.group(2), "")

    @staticmethod
    def _print(out: bytearray, text: str, code: int = 0) -> int:
        out += f"{text}\n".encode()
        return code

    def _echo(self, args: list[str], out: bytearray) -> int:
        return self._print(out, " ".join(args))

    def _cat(self, args: list[str], out: bytearray) -> int:
        for path in args:
            data = self._read(path)
            if data is None:
                return self._print(out, f"cat: can't open '{path}': No such file or directory", 1)
            out += data
        return 0

    def _wget(self, args: list[str], out: bytearray) -> int:
        url = next((a for a in args if "://" in a), "")
        host = urlsplit(url).hostname or ""
        peer = self._runtime.peer(self._container, host)
        if peer is None:
            return self._print(out, f"wget: bad address '{host}'", 1)
        return self._print(out, f"fake {peer.config.image} host={_hostname(peer)}")

    def _files(self, path: str) -> tuple[dict[str, bytes], str]:
        """Where `path` lives: a mounted volume's files (relative path) or the container's."""
        for mount in self._container.config.mounts:
            prefix = mount.path.rstrip("/") + "/"
            if path.startswith(prefix):
                return self._runtime.volume_files(mount.volume), path[len(prefix) :]
        return self._container.files, path

    def _read(self, path: str) -> bytes | None:
        files, key = self._files(path)
        return files.get(key)

    def _write(self, path: str, data: bytes) -> None:
        files, key = self._files(path)
        files[key] = data


def _redirection(argv: list[str]) -> tuple[list[str], str | None]:
    """Strip `>&2`, `> FILE` and `>FILE` from a command; return it and the file, if any."""
    words, target = [], None
    rest = iter(argv)
    for word in rest:
        if word == ">&2":
            continue
        if word == ">":
            target = next(rest, None)
        elif word.startswith(">"):
            target = word[1:]
        else:
            words.append(word)
    return words, target


class FakeRuntimeFactory:
    """A `RuntimeFactory` with one `FakeRuntime` per endpoint, kept in `runtimes` for tests."""

    def __init__(self, images: Iterable[str] = (), registries: Iterable[FakeRegistry] = ()) -> None:
        self.images = tuple(images)
        self.registries = tuple(registries)
        self.runtimes: dict[str, FakeRuntime] = {}

    def __call__(
        self, name: str, endpoint: str, *, tls: Mapping[str, str] | None = None
    ) -> FakeRuntime:
        if endpoint not in self.runtimes:
            self.runtimes[endpoint] = FakeRuntime(
                name, images=self.images, registries=self.registries
            )
        return self.runtimes[endpoint]


_FACTORY: RuntimeFactory = FakeRuntimeFactory()  # mypy checks the signature
