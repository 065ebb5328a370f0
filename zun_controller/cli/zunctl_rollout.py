"""`zunctl scale` and `zunctl rollout status|history|undo|restart` of Applications (the
rules they follow are zunctl_revisions'). `register(app)` adds them to the zunctl app."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import typer

from zun_controller.cli.zunctl_args import Output, Project, Timeout, client, duration, ref, target
from zun_controller.cli.zunctl_client import Client, ZunctlError, path_of
from zun_controller.cli.zunctl_columns import age
from zun_controller.cli.zunctl_output import dump, progress
from zun_controller.cli.zunctl_revisions import (
    REPLICA_SELECTOR,
    RevisionRow,
    history,
    pick_revision,
    restarted,
    undone,
)
from zun_controller.cli.zunctl_revisions import progress as rollout_progress
from zun_controller.cli.zunctl_table import render
from zun_controller.models.application import Application
from zun_controller.models.container import Container

rollout = typer.Typer(help="Watch, list, undo and restart the rollouts of an Application.")
Kind = Annotated[str, typer.Argument(help="application/NAME, or application")]
Name = Annotated[str | None, typer.Argument(help="NAME, when KIND is given apart")]
USAGE = "application/NAME or application NAME"
#: how often status is read while waiting
POLL = 1.0


def _application(kind: str, name: str | None) -> str:
    cls, found = target(kind, name, USAGE)
    if cls is not Application:
        raise ZunctlError(f"{cls.KIND.plural} have no rollouts or replicas: give {USAGE}", 2)
    return found


def _formats(output: str | None) -> None:
    if output not in (None, "json", "yaml"):
        raise ZunctlError(f"-o: unknown output format {output!r}: use json or yaml", code=2)


def _put(c: Client, obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    body: dict[str, Any] = c.request(
        "PUT", path_of(Application, meta["project"], meta["name"]), json=obj
    )
    return body


def _say(obj: dict[str, Any], what: str, output: str | None) -> None:
    if output:
        dump(obj, output)
    else:
        print(f"{ref(Application, obj['metadata']['name'])} {what}", flush=True)


def scale(
    kind: Kind,
    name: Name = None,
    replicas: Annotated[int | None, typer.Option("--replicas", help="how many to run")] = None,
    project: Project = None,
    output: Output = None,
) -> None:
    """Set an Application's replicas (a merge patch of spec.replicas)."""
    app_name = _application(kind, name)
    _formats(output)
    if replicas is None or replicas < 0:
        raise ZunctlError("--replicas: give the number to run, 0 or more (--replicas=3)", code=2)
    c = client(project)
    c.need(Application, app_name, c.config.project)
    body = {"spec": {"replicas": replicas}}
    obj = c.request(
        "PATCH",
        path_of(Application, c.config.project, app_name),
        json=body,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    _say(obj, "scaled", output)


@rollout.command()
def status(
    kind: Kind,
    name: Name = None,
    project: Project = None,
    timeout: Timeout = "0",
) -> None:
    """Wait until the rollout completes (exit 0), printing progress on stderr; exit 1 when the
    controller rolled it back or it failed, or after --timeout (0: no limit)."""
    app_name, limit = _application(kind, name), duration(timeout)
    c = client(project)
    deadline = time.monotonic() + limit if limit else None
    said = ""
    while True:
        state = rollout_progress(c.need(Application, app_name, c.config.project))
        if state.failed:
            raise ZunctlError(f"{ref(Application, app_name)} {state.failed}")
        if state.done:
            print(state.message, flush=True)
            return
        if state.message != said:
            progress.print(state.message, markup=False)
            said = state.message
        if deadline is not None and time.monotonic() >= deadline:
            raise ZunctlError(f"{ref(Application, app_name)}: timed out after {timeout}: {said}")
        time.sleep(POLL)


def _replicas(c: Client, app_name: str) -> list[dict[str, Any]]:
    selector = quote(REPLICA_SELECTOR + app_name)
    path = f"{path_of(Container, c.config.project)}?labelSelector={selector}"
    items: list[dict[str, Any]] = c.request("GET", path).get("items", [])
    return items


def _rows(c: Client, app_name: str) -> tuple[dict[str, Any], list[RevisionRow]]:
    obj = c.need(Application, app_name, c.config.project)
    return obj, history(obj, _replicas(c, app_name))


@rollout.command("history")
def history_(kind: Kind, name: Name = None, project: Project = None, output: Output = None) -> None:
    """The revisions status keeps (current, previous, failed) with their images; CREATED is
    when the revision's oldest live replica record was made (docker Clusters only)."""
    app_name = _application(kind, name)
    _formats(output)
    c = client(project)
    _, rows = _rows(c, app_name)
    if output:
        dump({"revisions": [r.as_wire() for r in rows]}, output)
        return
    table = [["REVISION", "NAME", "STATUS", "CREATED", "IMAGES"]]
    for r in rows:
        created = age(r.created) if r.created else "<unknown>"
        table.append([str(r.number), r.name, r.status or "-", created, ",".join(r.images)])
    print(f"{ref(Application, app_name)}")
    print("\n".join(render(table, None) if rows else ["No revisions recorded."]))


@rollout.command()
def undo(
    kind: Kind,
    name: Name = None,
    to_revision: Annotated[
        str | None, typer.Option("--to-revision", help="a REVISION number or NAME of history")
    ] = None,
    project: Project = None,
    output: Output = None,
) -> None:
    """Put a kept revision's template back into spec (the previous one unless told)."""
    app_name = _application(kind, name)
    _formats(output)
    c = client(project)
    obj, rows = _rows(c, app_name)
    try:
        row = pick_revision(rows, obj, to_revision)
    except ValueError as exc:
        raise ZunctlError(str(exc), code=2 if to_revision else 1) from None
    want = undone(obj, row)
    if want["spec"] == obj["spec"]:
        _say(obj, f"skipped rollback (spec already is revision {row.number}, {row.name})", output)
        return
    _say(_put(c, want), f"rolled back to revision {row.number} ({row.name})", output)


@rollout.command()
def restart(kind: Kind, name: Name = None, project: Project = None, output: Output = None) -> None:
    """Replace every replica, as an update would: sets the template label
    zunctl.zun.openstack.org/restartedAt to now, which is a new revision."""
    app_name = _application(kind, name)
    _formats(output)
    c = client(project)
    obj = c.need(Application, app_name, c.config.project)
    _say(_put(c, restarted(obj, datetime.now(UTC))), "restarted", output)


def register(app: typer.Typer) -> None:
    """Add `scale` and `rollout ...` to `app`."""
    app.command()(scale)
    app.add_typer(rollout, name="rollout")
