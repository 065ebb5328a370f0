"""`Waiting`: what a reconciler raises when something a record needs is not there yet."""

from __future__ import annotations


class Waiting(Exception):
    """Something the container needs is not there yet; say why in status and look again."""

    def __init__(self, reason: str, message: str, after: float = 5.0) -> None:
        super().__init__(message)
        self.reason, self.message, self.after = reason, message, after
