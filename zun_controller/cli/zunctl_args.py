"""What `zunctl` commands share: the options every command takes, the client a command
builds from them, and the parsing of `KIND NAME` / `KIND/NAME` and of durations.

A usage error (a value the command line cannot mean) is a `ZunctlError` with exit status 2
naming the flag or argument and what to give instead."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from zun_controller.cli.zunctl_client import Client, Config, ZunctlError
from zun_controller.errors import InvalidError
from zun_controller.models.base import GROUP, Resource
from zun_controller.models.registry import lookup

Project = Annotated[
    str | None, typer.Option("--project", "-p", help="project [ZUN_PROJECT or config]")
]
Files = Annotated[str, typer.Option("--filename", "-f", help="FILE, DIR or - (stdin)")]
Output = Annotated[str | None, typer.Option("--output", "-o", help="json|yaml")]
Timeout = Annotated[str, typer.Option("--timeout", help="how long to wait: 90, 90s, 5m, 1h")]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


Url = Annotated[str | None, typer.Option("--url", help="the API's URL [ZUN_URL or config]")]


def client(project: str | None) -> Client:
    return Client(Config.load(project))


def kind(name: str) -> type[Resource]:
    try:
        return lookup(name)
    except InvalidError as exc:
        raise ZunctlError(str(exc).removeprefix("kind: ")) from None


def target(first: str, second: str | None, usage: str) -> tuple[type[Resource], str]:
    """`KIND NAME` or `KIND/NAME` as the kind's class and the name; `usage` is what the
    command line should look like, for the error when it is neither."""
    if second is None and "/" in first:
        first, _, second = first.partition("/")
    if not second:
        raise ZunctlError(f"say which record: {usage}", code=2)
    return kind(first.split(".", 1)[0]), second


def ref(cls: type[Resource], name: str) -> str:
    """`application.zun.openstack.org/web`: how kubectl names a record in what it prints."""
    return f"{cls.KIND.kind.lower()}.{GROUP}/{name}"


def duration(value: str, flag: str = "--timeout") -> float:
    """Seconds of `90`, `90s`, `1.5m`, `500ms`, `1h`; a usage error naming `flag` otherwise."""
    found = _DURATION.match(value.strip())
    if not found:
        raise ZunctlError(f"{flag}: {value!r} is not a duration: give 90, 90s, 5m or 1h", code=2)
    return float(found.group(1)) * _UNITS[found.group(2)]
