"""`ContainerIO`: the port through which the API reads logs of and runs commands in containers.

The API may not talk to engines itself (import layers); the composition root passes in an
implementation on top of the runtime drivers (cli/compose.py `PoolContainerIO`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from zun_controller.models.container import Container


class ContainerIO(Protocol):
    def logs(self, container: Container, *, tail: int | None, follow: bool) -> AsyncIterator[bytes]:
        """stdout and stderr of the container the record made."""
        ...

    async def exec(self, container: Container, command: list[str]) -> tuple[int, bytes]:
        """Run a command inside it: (exit code, output)."""
        ...
