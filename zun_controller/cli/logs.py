"""Logging set-up: constant messages, data in keys (`kind`, `key`, `reconcile_id`, ...)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer

from zun_controller.engine.logcontext import CONTEXT_ATTR, ReconcileContextFilter

#: the options every long-running command takes
LogJson = Annotated[bool, typer.Option("--log-json", envvar="ZUN_LOG_JSON", help="JSON log lines")]
LogLevel = Annotated[str, typer.Option("--log-level", envvar="ZUN_LOG_LEVEL")]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, object]:
    """The record's own keys, after those of the reconcile it was logged in."""
    own = {k: v for k, v in vars(record).items() if k not in _STANDARD and k != CONTEXT_ATTR}
    return {**getattr(record, CONTEXT_ATTR, {}), **own}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = (
            f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        )
        pairs = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return f"{base} {pairs}".rstrip()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        return json.dumps(data, default=str)


def setup(level: str = "INFO", json_logs: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_logs else KeyValueFormatter())
    handler.addFilter(ReconcileContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
