"""The reconcile a log line belongs to: the controller binds kind, project, name and
reconcile id for the length of each reconcile, and `ReconcileContextFilter` (installed on the
log handler) attaches them to every record logged meanwhile, by any module; the formatters
print them as keys of their own."""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token

from zun_controller.store.keys import split_queue_key

#: the LogRecord attribute holding the context (`name` itself is taken by the logger's name)
CONTEXT_ATTR = "zun_reconcile"
_CURRENT: ContextVar[dict[str, str] | None] = ContextVar("zun_reconcile", default=None)


def bind(kind: str, key: str, reconcile_id: str) -> Token[dict[str, str] | None]:
    """Make (kind, project, name, reconcile_id) of `key` current; `unbind` with the token."""
    _, project, name = split_queue_key(key)
    context = {"kind": kind, "project": project or "", "name": name, "reconcile_id": reconcile_id}
    return _CURRENT.set(context)


def unbind(token: Token[dict[str, str] | None]) -> None:
    _CURRENT.reset(token)


def current() -> dict[str, str] | None:
    return _CURRENT.get()


class ReconcileContextFilter(logging.Filter):
    """Adds the current reconcile's fields to a record (never overriding the record's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        if context is not None and not hasattr(record, CONTEXT_ATTR):
            setattr(record, CONTEXT_ATTR, context)
        return True
