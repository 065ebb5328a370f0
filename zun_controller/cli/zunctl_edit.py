"""`zunctl label`, `annotate`, `patch` and `wait` of any record (the edits are
zunctl_patch's). `register(app)` adds them to the zunctl app."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from zun_controller.cli import zunctl_jsonpath as jsonpath
from zun_controller.cli.zunctl_args import Output, Project, Timeout, client, duration, ref, target
from zun_controller.cli.zunctl_client import Client, ZunctlError, path_of, where
from zun_controller.cli.zunctl_output import dump
from zun_controller.cli.zunctl_patch import (
    PatchError,
    changes,
    json_patch,
    meta_patch,
    parse_json,
)
from zun_controller.models.base import Resource

MERGE = {"Content-Type": "application/merge-patch+json"}
Args = Annotated[list[str], typer.Argument(help="KIND NAME key=value key- ... (or KIND/NAME)")]
Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="change keys that have another value already")
]
#: how often `wait` reads the record
POLL = 0.5
#: attempts of a read-modify-write (json patch) that meets a concurrent write (409)
ATTEMPTS = 5


def _split(args: list[str], usage: str) -> tuple[type[Resource], str, list[str]]:
    if not args:
        raise ZunctlError(f"say which record: {usage}", code=2)
    if "/" in args[0]:
        cls, name = target(args[0], None, usage)
        return cls, name, args[1:]
    cls, name = target(args[0], args[1] if len(args) > 1 else None, usage)
    return cls, name, args[2:]


def _formats(output: str | None) -> None:
    if output not in (None, "json", "yaml"):
        raise ZunctlError(f"-o: unknown output format {output!r}: use json or yaml", code=2)


def _done(cls: type[Resource], obj: dict[str, Any], what: str, output: str | None) -> None:
    if output:
        dump(obj, output)
    else:
        print(f"{ref(cls, obj['metadata']['name'])} {what}", flush=True)


def _merge(c: Client, cls: type[Resource], name: str, body: dict[str, Any]) -> dict[str, Any]:
    path = path_of(cls, c.config.project, name)
    obj: dict[str, Any] = c.request("PATCH", path, json=body, headers=MERGE)
    return obj


def _meta_command(
    args: list[str], field: str, overwrite: bool, project: str | None
) -> tuple[type[Resource], dict[str, Any], dict[str, Any]]:
    command = "label" if field == "labels" else "annotate"
    cls, name, given = _split(args, f"zunctl {command} KIND NAME key=value key-")
    try:
        wanted = changes(given, command)
    except PatchError as exc:
        raise ZunctlError(str(exc), code=2) from None
    c = client(project)
    live = c.need(cls, name, c.config.project)
    try:
        body = meta_patch(live["metadata"].get(field) or {}, wanted, field, overwrite)
    except PatchError as exc:
        raise ZunctlError(f"{ref(cls, name)}: {exc}") from None
    return cls, live, _merge(c, cls, name, body)


def label(
    args: Args, overwrite: Overwrite = False, project: Project = None, output: Output = None
) -> None:
    """Set (key=value) or remove (key-) labels of a record."""
    _formats(output)
    cls, live, obj = _meta_command(args, "labels", overwrite, project)
    _done(cls, obj, "labeled" if _changed(live, obj) else "not labeled", output)


def annotate(
    args: Args, overwrite: Overwrite = False, project: Project = None, output: Output = None
) -> None:
    """Set (key=value) or remove (key-) annotations of a record."""
    _formats(output)
    cls, live, obj = _meta_command(args, "annotations", overwrite, project)
    _done(cls, obj, "annotated" if _changed(live, obj) else "not annotated", output)


def patch(
    args: Annotated[list[str], typer.Argument(help="KIND NAME (or KIND/NAME)")],
    body: Annotated[
        str | None, typer.Option("--patch", help="the patch, as JSON (not -p: that is the project)")
    ] = None,
    type_: Annotated[
        str, typer.Option("--type", help="merge (RFC 7386) or json (RFC 6902)")
    ] = "merge",
    project: Project = None,
    output: Output = None,
) -> None:
    """Change a record by a JSON merge patch or a JSON patch."""
    _formats(output)
    cls, name, extra = _split(args, "zunctl patch KIND NAME --patch JSON")
    if extra:
        raise ZunctlError(f"patch: unexpected {' '.join(extra)!r}: the patch goes in --patch", 2)
    if body is None:
        raise ZunctlError('--patch: give the patch, e.g. --patch \'{"spec": {"replicas": 2}}\'', 2)
    if type_ not in ("merge", "json"):
        raise ZunctlError(f"--type: must be merge or json, not {type_!r}", code=2)
    try:
        change = parse_json(body)
    except PatchError as exc:
        raise ZunctlError(str(exc), code=2) from None
    c = client(project)
    live = c.need(cls, name, c.config.project)
    if type_ == "merge":
        if not isinstance(change, dict):
            raise ZunctlError("--patch: a merge patch is a JSON object", code=2)
        obj = _merge(c, cls, name, change)
    else:
        obj = _json_patch(c, cls, live, change)
    _done(cls, obj, "patched" if _changed(live, obj) else "patched (no change)", output)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a write changed what writes may change (spec, labels, annotations,
    finalizers)."""
    keys = ("labels", "annotations", "finalizers")
    return before.get("spec") != after.get("spec") or any(
        before["metadata"].get(k) != after["metadata"].get(k) for k in keys
    )


def _json_patch(c: Client, cls: type[Resource], live: dict[str, Any], ops: Any) -> dict[str, Any]:
    """Apply `ops` to the record and write it back with its resourceVersion; a concurrent
    write (409) means read and apply again."""
    name = live["metadata"]["name"]
    path = path_of(cls, c.config.project, name)
    for attempt in range(ATTEMPTS):
        try:
            wanted = json_patch(live, ops)
        except PatchError as exc:
            raise ZunctlError(str(exc), code=2) from None
        try:
            obj: dict[str, Any] = c.request("PUT", path, json=wanted)
            return obj
        except ZunctlError as exc:
            if exc.status != 409 or attempt == ATTEMPTS - 1:
                raise
        live = c.need(cls, name, c.config.project)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Until:
    """What `wait --for` waits for: deletion, a condition's status, or a JSONPath's value."""

    delete: bool = False
    condition: str = ""
    status: str = "True"
    path: str = ""
    value: str = ""

    def met(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return self.delete
        if self.delete:
            return False
        if self.condition:
            conditions = (obj.get("status") or {}).get("conditions") or []
            found: dict[str, Any] = next(
                (c for c in conditions if c.get("type") == self.condition), {}
            )
            return str(found.get("status", "")).lower() == self.status.lower()
        return jsonpath.render(self.path, obj) == self.value


def until(given: str) -> Until:
    """`delete`, `condition=TYPE[=STATUS]` or `jsonpath={PATH}=VALUE`; a usage error else."""
    how = "--for: give delete, condition=Ready[=True|False] or jsonpath={.status.phase}=Running"
    if given == "delete":
        return Until(delete=True)
    kind, _, rest = given.partition("=")
    if kind == "condition" and rest:
        name, _, status = rest.partition("=")
        return Until(condition=name, status=status or "True")
    if kind == "jsonpath" and rest.startswith("{") and "}=" in rest:
        path, _, value = rest.rpartition("}=")
        try:
            jsonpath.steps(path[1:])
        except jsonpath.JsonPathError as exc:
            raise ZunctlError(f"--for: {exc}", code=2) from None
        return Until(path=path + "}", value=value)
    raise ZunctlError(f"{how}, not {given!r}", code=2)


def wait(
    args: Annotated[list[str], typer.Argument(help="KIND NAME (or KIND/NAME)")],
    for_: Annotated[
        str | None,
        typer.Option(
            "--for", help="delete | condition=Ready[=True] | jsonpath={.status.phase}=Running"
        ),
    ] = None,
    timeout: Timeout = "30s",
    project: Project = None,
) -> None:
    """Wait until a record is deleted, has a condition, or a field has a value; exit 1 after
    --timeout."""
    cls, name, extra = _split(args, "zunctl wait KIND NAME --for=...")
    if extra:
        raise ZunctlError(f"wait: unexpected {' '.join(extra)!r}", code=2)
    if for_ is None:
        raise ZunctlError("--for: say what to wait for: delete, condition=Ready or jsonpath=...", 2)
    want, limit = until(for_), duration(timeout)
    c = client(project)
    deadline = time.monotonic() + limit
    while not want.met(obj := c.get(cls, name, c.config.project)):
        if obj is None:
            raise ZunctlError(where(cls, name, c.config.project, "not found"))
        if time.monotonic() >= deadline:
            raise ZunctlError(f"{ref(cls, name)}: timed out after {timeout} waiting for {for_}")
        time.sleep(POLL)
    print(f"{ref(cls, name)} {'deleted' if want.delete else 'condition met'}", flush=True)


def register(app: typer.Typer) -> None:
    """Add `label`, `annotate`, `patch` and `wait` to `app`."""
    for command in (label, annotate, patch, wait):
        app.command()(command)
