"""The `Runtime` port: one container engine on one host (a Docker engine, or any engine that
speaks the Docker API), in driver terms that know nothing of records or the store.

Every call is idempotent where its name says so, bounded in time, retried on transient
failures by the implementation, and fails with the package's errors: `TransientError`
(engine unreachable, timeout), `NotFoundError`, `ConflictError` (name taken),
`PermanentError(reason, message)` with reason `ImageNotFound` or `InvalidConfig` or
`RuntimeNotFound` when retrying cannot help. A pull that fails is `PermanentError` with reason
`ErrImagePull` and the registry's own words (unauthorized, manifest unknown, connection
refused), whether or not a later pull may succeed: callers back off and try again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, TypeVar

from zun_controller.errors import ConflictError, InUseError

T = TypeVar("T")


@dataclass(frozen=True)
class HostInfo:
    name: str
    version: str
    api_version: str
    cpus: float
    memory: int
    containers: int
    runtimes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    protocol: str = "tcp"  # "tcp" | "udp"
    host_ip: str = "127.0.0.1"
    host_port: int | None = None  # None or 0: the engine picks one


@dataclass(frozen=True)
class Mount:
    volume: str  # engine volume name
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class Healthcheck:
    command: tuple[str, ...]  # run inside the container, exit 0 = healthy (CMD form)
    interval: float = 5.0
    timeout: float = 2.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class ContainerConfig:
    """What to create. `name` is deterministic, so a second create of it is a conflict."""

    name: str
    image: str
    labels: Mapping[str, str]
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str | None = None
    hostname: str | None = None
    ports: tuple[PortMapping, ...] = ()
    cpus: float | None = None
    memory: int | None = None
    restart_policy: str = "no"  # engine-side: "no" | "always" | "on-failure"
    networks: tuple[str, ...] = ()  # engine network names; the first is the primary
    network_aliases: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    healthcheck: Healthcheck | None = None
    runtime: str | None = None  # OCI runtime registered with the engine; None: its default
    init: bool = True  # an init as PID 1, so SIGTERM stops fast


class ContainerStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


@dataclass(frozen=True)
class PublishedPort:
    container_port: int
    protocol: str
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    image: str
    labels: Mapping[str, str]
    status: ContainerStatus
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    restart_count: int = 0
    health: str | None = None  # "starting" | "healthy" | "unhealthy" | None
    ips: Mapping[str, str] = field(default_factory=dict)  # network name -> IPv4
    ports: tuple[PublishedPort, ...] = ()
    cpus: float | None = None
    memory: int | None = None
    error: str = ""  # the engine's own error text (e.g. why start failed)
    image_id: str = ""  # the engine's id of the image it runs (sha256 of its config)


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry (host[:port], `docker.io` for Docker Hub)."""

    registry: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ImageInfo:
    id: str  # the engine's image id
    repo_digests: tuple[str, ...]  # `repository@sha256:...`, one per repository pulled from
    size: int  # bytes
    repo_tags: tuple[str, ...] = ()  # `repository:tag`, every tag naming it on the engine


@dataclass(frozen=True)
class NetworkState:
    id: str
    name: str
    labels: Mapping[str, str]
    subnet: str | None = None


@dataclass(frozen=True)
class VolumeState:
    name: str
    labels: Mapping[str, str]
    mountpoint: str | None = None


@dataclass(frozen=True)
class RuntimeEvent:
    """A container event of the engine: `action` is Docker's (start, die, stop, pause, ...)."""

    container_id: str
    action: str
    labels: Mapping[str, str]


#: bytes of an exec's output a runtime keeps unless told otherwise
EXEC_OUTPUT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ExecResult:
    """`exit_code` is -1 when the command did not finish (cut or timed out: it was stopped)."""

    exit_code: int
    output: bytes
    #: the command printed more than the limit; `output` is its first bytes
    truncated: bool = False
    #: the command ran past its time and was stopped
    timed_out: bool = False


@dataclass(frozen=True)
class ContainerStats:
    cpu_percent: float  # of one core
    memory_bytes: int
    memory_limit: int
    block_read: int = 0  # bytes read from block devices since the container started
    block_write: int = 0
    net_rx: int = 0  # bytes received on all its interfaces since it started
    net_tx: int = 0


def carries(found: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether an engine object's labels hold every one of `labels`: the test of "ours"."""
    return all(found.get(key) == value for key, value in labels.items())


def ours(obj: T, found: Mapping[str, str], labels: Mapping[str, str], what: str) -> T:
    """`obj` if its labels `found` carry `labels`; else `ConflictError` naming it and the
    owner it names, so a name taken by someone else is reported, never adopted."""
    if carries(found, labels):
        return obj
    owner = "/".join(
        found.get(f"zun.openstack.org/{key}", "") for key in ("project", "kind", "name")
    )
    by = f"by {owner}" if owner.strip("/") else "outside Zun"
    raise ConflictError(f"{what} exists and is not ours (it is used {by})")


def tagged(name: str) -> str:
    """An image name with `:latest` when it names neither a tag nor a digest."""
    if "@" in name or ":" in name.rsplit("/", 1)[-1]:
        return name
    return f"{name}:latest"


@dataclass(frozen=True)
class ImageUser:
    """A container as the removal of an image looks at it."""

    id: str
    name: str
    state: str
    image_id: str  # what it was made from
    reference: str  # the image as its config names it


def image_users(
    ref: str, image_id: str, last_tag: bool, containers: Iterable[ImageUser]
) -> InUseError | None:
    """The refusal to remove the tag `ref` of image `image_id` while containers use it (made
    from the image by that reference, or by any when it is the image's last tag); None when
    none does."""
    users = [
        (c.name, c.id, c.state)
        for c in containers
        if c.image_id == image_id and (last_tag or tagged(c.reference) == ref)
    ]
    return image_in_use(ref, users) if users else None


def image_in_use(image: str, users: list[tuple[str, str, str]]) -> InUseError:
    """The refusal to remove `image` while the containers `users` ((name, id, state) each)
    were made from it: their ids as `users`, each named in the message."""
    ordered = sorted(users)
    named = ", ".join(f"{name} ({cid[:12]}, {state})" for name, cid, state in ordered)
    return InUseError(
        f"image {image} is in use by container {named}: remove the container first",
        tuple(cid for _, cid, _ in ordered),
    )


class Runtime(Protocol):
    """One engine. `labels` filters select containers/networks/volumes carrying every pair."""

    name: str

    async def info(self) -> HostInfo: ...

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerState]:
        """Every container (any status) carrying the labels."""
        ...

    async def inspect(self, name_or_id: str) -> ContainerState | None: ...

    async def image_exists(self, image: str) -> bool: ...

    async def inspect_image(self, image: str) -> ImageInfo | None:
        """The image by reference or id; None when absent."""
        ...

    async def list_images(self) -> list[ImageInfo]:
        """Every image on the engine, with its tags (an untagged one has none)."""
        ...

    async def pull_image(self, image: str, auth: RegistryAuth | None, within: float) -> ImageInfo:
        """Pull the reference (its digest, else its tag, else `latest`) within `within`
        seconds; `PermanentError("ErrImagePull", registry's words)` when it fails,
        `TransientError` when the engine is unreachable. The password goes to the engine only,
        never into an error."""
        ...

    async def remove_image(self, image: str) -> None:
        """Remove the reference `image` (`repository:tag`, `latest` when it names no tag) as
        `docker rmi repository:tag` does: that tag goes, and the image (with the digest
        references of that repository) only when no other tag names it. Never forced: a
        container, running or not, made from the image by that reference, or by any when it
        is the image's last tag, uses it (`image_users`); while any does, `InUseError` whose
        `users` are their ids, its message naming every one, and nothing is removed.
        `NotFoundError` when no image has that reference; a digest reference is
        `PermanentError("InvalidConfig")`."""
        ...

    async def create(self, config: ContainerConfig) -> ContainerState:
        """Create (not start); `ConflictError` if the name exists, `PermanentError` for a
        missing image (reason ImageNotFound) or an unknown OCI runtime (RuntimeNotFound)."""
        ...

    async def start(self, container_id: str) -> None: ...

    async def stop(self, container_id: str, grace: float = 10.0) -> None:
        """Stop (SIGTERM, SIGKILL after `grace` seconds); already stopped is fine."""
        ...

    async def pause(self, container_id: str) -> None: ...

    async def unpause(self, container_id: str) -> None: ...

    async def remove(self, container_id: str) -> None:
        """Force-remove (kill if running); already gone is fine."""
        ...

    async def update_resources(
        self, container_id: str, cpus: float | None, memory: int | None
    ) -> None: ...

    async def ensure_network(
        self, name: str, labels: Mapping[str, str], *, internal: bool = False
    ) -> NetworkState:
        """Create the bridge network with `labels` if absent (idempotent); returns it. One of
        that name that does not carry every one of `labels` is not the caller's: `ConflictError`
        naming it, and it is left as it is."""
        ...

    async def remove_network(self, name: str, labels: Mapping[str, str]) -> None:
        """Remove the network of that name if it carries every one of `labels`; absent, or
        not carrying them (not the caller's), nothing is removed; `ConflictError` while
        containers use it."""
        ...

    async def list_networks(self, labels: Mapping[str, str]) -> list[NetworkState]: ...

    async def ensure_volume(self, name: str, labels: Mapping[str, str]) -> VolumeState:
        """Create the volume with `labels` if absent (idempotent); returns it. One of that
        name that does not carry every one of `labels`: `ConflictError`, left as it is."""
        ...

    async def remove_volume(self, name: str, labels: Mapping[str, str]) -> None:
        """Remove the volume of that name if it carries every one of `labels`; absent, or not
        carrying them, nothing is removed; `ConflictError` while a container uses it."""
        ...

    async def list_volumes(self, labels: Mapping[str, str]) -> list[VolumeState]: ...

    def events(self, labels: Mapping[str, str]) -> AsyncIterator[RuntimeEvent]:
        """Container events from now on for containers carrying the labels; ends (raising
        `TransientError`) when the engine goes away. Callers reconnect."""
        ...

    def logs(
        self, container_id: str, *, tail: int | None = None, follow: bool = False
    ) -> AsyncIterator[bytes]:
        """stdout and stderr, interleaved as the engine gives them."""
        ...

    async def exec(
        self,
        container_id: str,
        command: list[str],
        *,
        max_output: int = EXEC_OUTPUT_BYTES,
        max_seconds: float | None = None,
    ) -> ExecResult:
        """Run `command` in the container, keeping at most `max_output` bytes of its output
        and letting it run at most `max_seconds` (None: the runtime's request timeout);
        past either, the command is stopped, not left running."""
        ...

    async def stats(self, container_id: str) -> ContainerStats: ...

    async def close(self) -> None: ...


class RuntimeFactory(Protocol):
    """Connects to an engine from a Host's endpoint (unix:// or tcp:// with TLS files)."""

    def __call__(
        self, name: str, endpoint: str, *, tls: Mapping[str, str] | None = None
    ) -> Runtime: ...
