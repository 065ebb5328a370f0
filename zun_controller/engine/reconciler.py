"""The reconciler contract: `reconcile(key) -> Result`, level-triggered and idempotent.

A reconciler gets a key (`plural/project/name`), reads the record from the informer cache,
compares it with the world and acts on the difference. It must be safe to run again after a
crash at any line. Raising means "retry with backoff"; `TerminalError` means "retrying cannot
help": it is counted and not retried until the record changes; `Result(requeue_after=s)` asks
to be run again after `s` seconds even if nothing changes (polling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Result:
    requeue_after: float | None = None
    requeue: bool = False


class TerminalError(Exception):
    """A reconcile failure that retrying cannot fix; the reconciler has put it in status."""


class Reconciler(Protocol):
    async def reconcile(self, key: str) -> Result: ...
