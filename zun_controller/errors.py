"""The error hierarchy every layer speaks, translated once at each edge (store, drivers, API).

- `TransientError`: try again later (connection lost, timeout); reconcilers retry with backoff.
- `ConflictError`: a compare-and-swap lost (stale resourceVersion) or the name exists;
  `InUseError`, a removal refused while others use the thing, names them.
- `NotFoundError`: the record or the outside object does not exist.
- `InvalidError`: input failed validation; carries the field paths and reasons.
- `ForbiddenError`: the writer may not make this write (an admin-only field, a quota).
- `PermanentError`: retrying cannot help (e.g. an image that does not exist); shown in status.
- `CompactedError`: a watch or list asked for a revision etcd has compacted; list again.
- `DecryptionError`: a stored value this process cannot decrypt (no key file, a key it lacks,
  or a value that fails authentication); retrying cannot help until its key file changes.
"""

from __future__ import annotations

from dataclasses import dataclass


class ZunError(Exception):
    """Base of every error the package raises on purpose."""


class TransientError(ZunError):
    """A failure that may go away by itself; retry with backoff."""


class StaleRuntimeStateError(ZunError):
    """The engine holds runtime state of a container from before it restarted (its task,
    containerd's task directory, runc's state) and will not start it; retrying cannot help, a
    new container (a new id, new state) does."""


class ConflictError(ZunError):
    """A write lost a compare-and-swap, or a create found the name taken."""


class InUseError(ConflictError):
    """A removal refused, and nothing removed, because others use the thing: `users` names
    them as the layer that raises it knows them (engine container ids, record references)."""

    def __init__(self, message: str, users: tuple[str, ...]) -> None:
        super().__init__(message)
        self.users = users


class AlreadyExistsError(ConflictError):
    """A create found a record of that kind, project and name."""


class FencedError(ZunError):
    """A leader-only write or action refused: this replica does not hold the lease (now)."""


class NotFoundError(ZunError):
    """The thing asked for does not exist."""


class ForbiddenError(ZunError):
    """The writer may not make this write: an admin-only field, or a quota it would exceed."""


class PermanentError(ZunError):
    """Retrying cannot help; the reason belongs in status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class CompactedError(ZunError):
    """The revision asked for is older than etcd's compaction point."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revision compacted (oldest available is {compact_revision})")
        self.compact_revision = compact_revision


class DecryptionError(ZunError):
    """A stored value that cannot be decrypted here; the message names the etcd key, the key id
    and what to do, never the value."""


@dataclass(frozen=True)
class FieldError:
    """One reason a record is invalid, at a dotted field path such as `spec.ports[0].hostPort`."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class InvalidError(ZunError):
    """Input failed validation; `errors` names every field and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    @classmethod
    def at(cls, path: str, reason: str) -> InvalidError:
        return cls([FieldError(path, reason)])
