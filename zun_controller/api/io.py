"""`ContainerIO`: the port through which the API reads logs of, runs commands in and reads the
resource usage of containers; `ImageIO`: the one through which it lists, pulls and removes the
images of a Host.

The API may not talk to engines itself (import layers); the composition root passes in an
implementation on top of the runtime drivers (cli/apiserver.py `PoolContainerIO`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from zun_controller.models.container import Container
from zun_controller.models.host import Host


class ContainerUsage(Protocol):
    """What a container uses now (CPU, memory) and has moved since it started (I/O)."""

    @property
    def cpu_percent(self) -> float:
        """Of one core: 100 is one core busy."""
        ...

    @property
    def memory_bytes(self) -> int: ...

    @property
    def memory_limit(self) -> int:
        """Its limit, or the host's memory when it has none."""
        ...

    @property
    def block_read(self) -> int: ...

    @property
    def block_write(self) -> int: ...

    @property
    def net_rx(self) -> int: ...

    @property
    def net_tx(self) -> int: ...


class ExecOutcome(Protocol):
    """What a command run in a container gave: its exit code (-1 when it was stopped), its
    output (at most the bytes asked for), and whether it was cut or ran out of time."""

    @property
    def exit_code(self) -> int: ...

    @property
    def output(self) -> bytes: ...

    @property
    def truncated(self) -> bool: ...

    @property
    def timed_out(self) -> bool: ...


class ContainerIO(Protocol):
    def logs(self, container: Container, *, tail: int | None, follow: bool) -> AsyncIterator[bytes]:
        """stdout and stderr of the container the record made."""
        ...

    async def exec(
        self, container: Container, command: list[str], *, max_output: int, max_seconds: float
    ) -> ExecOutcome:
        """Run a command inside it, keeping at most `max_output` bytes of output and stopping
        it after `max_seconds`."""
        ...

    async def stats(self, container: Container) -> ContainerUsage:
        """Its resource usage, as the engine reports it now."""
        ...


class LocalImage(Protocol):
    """An image on an engine."""

    @property
    def id(self) -> str:
        """The engine's id (`sha256:` of its config)."""
        ...

    @property
    def repo_tags(self) -> tuple[str, ...]:
        """`repository:tag`, every tag naming it on the engine."""
        ...

    @property
    def size(self) -> int:
        """Bytes."""
        ...


@dataclass(frozen=True)
class Credentials:
    """What a pull from one registry (host[:port]) logs in with."""

    registry: str
    username: str
    password: str = field(repr=False)


class ImageIO(Protocol):
    async def images(self, host: Host) -> Sequence[LocalImage]:
        """Every image on the host's engine."""
        ...

    async def pull(
        self, host: Host, image: str, credentials: Credentials | None, *, within: float
    ) -> LocalImage:
        """Pull `image` onto the host, giving up after `within` seconds; a registry's refusal
        is `PermanentError("ErrImagePull")` in the registry's words."""
        ...

    async def remove(self, host: Host, image: str) -> None:
        """Remove the tag `image` (`repository:tag`) from the host's engine as `docker rmi`
        without force: the image goes with its last tag. `InUseError` whose `users` are the
        engine ids of the containers using it (made by that tag, or by any for the last
        tag), and nothing removed; `NotFoundError` when the engine has no such tag."""
        ...
