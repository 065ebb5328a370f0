"""`zunctl`: the command line of the REST API (DESIGN.md "Interfaces").

Exit status 0 on success; otherwise non-zero with one line on stderr (`zunctl: <reason>`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
import typer.main

from zun_controller.cli import zunctl_edit, zunctl_rollout
from zun_controller.cli.zunctl_apply import OwnedElsewhere, apply_one, diff_one, read_manifests
from zun_controller.cli.zunctl_args import Files, Project, Url, client, kind
from zun_controller.cli.zunctl_argv import hoist
from zun_controller.cli.zunctl_client import Client, ZunctlError, path_of, where
from zun_controller.cli.zunctl_describe import describe as describe_record
from zun_controller.cli.zunctl_jsonpath import JsonPathError, sort_key
from zun_controller.cli.zunctl_output import FORMATS, Table, console, show
from zun_controller.cli.zunctl_prune import applyset_name, label
from zun_controller.cli.zunctl_prune import prune as prune_set
from zun_controller.cli.zunctl_table import line, widths
from zun_controller.cli.zunctl_tokens import app as token_app
from zun_controller.models.base import GROUP, Resource
from zun_controller.models.container import Container

app = typer.Typer(add_completion=False)
app.add_typer(token_app, name="token")

#: the names the commands of this module call (zunctl_args holds what commands share)
_client, _kind = client, kind


@app.callback()
def _root(url: Url = None) -> None:
    """Zun: containers as records; apply, get, describe, delete, logs, exec, scale, rollout,
    label, annotate, patch, wait, token. -p/--project, -o/--output and --url may come anywhere on
    the line."""
    if url:  # the flag before ZUN_URL and the config file, for this process
        os.environ["ZUN_URL"] = url


@app.command()
def apply(
    filename: Files,
    project: Project = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="delete what this apply-set made and no longer names")
    ] = False,
    applyset: Annotated[
        str | None, typer.Option("--applyset", help="apply-set name [the file or directory name]")
    ] = None,
    force_conflicts: Annotated[
        bool,
        typer.Option(
            "--force-conflicts", help="let the apply-set adopt records another writer owns"
        ),
    ] = False,
) -> None:
    """Create or update every object of the manifests; one line per object. With an
    apply-set, a record another writer owns is left as it is, reported on stderr, and the
    exit status is 1."""
    client = _client(project)
    manifests = read_manifests(filename, client.config.project)
    name = applyset_name(filename, applyset) if prune or applyset else None
    if name:
        label(manifests, name)
    refused = 0
    for m in manifests:
        try:
            print(apply_one(client, m, force_conflicts=force_conflicts), flush=True)
        except OwnedElsewhere as exc:
            print(f"zunctl: {exc}", file=sys.stderr, flush=True)
            refused += 1
    if prune and name:
        for line in prune_set(client, manifests, name, client.config.project):
            print(line, flush=True)
    if refused:
        raise ZunctlError(f"{refused} object(s) owned by another writer were not changed")


@app.command()
def diff(
    filename: Files,
    project: Project = None,
    applyset: Annotated[
        str | None, typer.Option("--applyset", help="compare as applied with this apply-set")
    ] = None,
) -> None:
    """Show how the manifests differ from the live records; exit 1 when they do."""
    client = _client(project)
    manifests = read_manifests(filename, client.config.project)
    if applyset:
        label(manifests, applyset)
    changed = [d for m in manifests if (d := diff_one(client, m))]
    for text in changed:
        print(text)
    if changed:
        raise typer.Exit(1)


AllProjects = Annotated[
    bool, typer.Option("--all-projects", "-A", help="every project the token may see")
]


@app.command()
def get(
    kind: str,
    name: Annotated[str | None, typer.Argument()] = None,
    project: Project = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help=FORMATS)] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="follow changes")] = False,
    all_projects: AllProjects = False,
    selector: Annotated[
        str | None, typer.Option("--selector", "-l", help="labels: key=value,key!=value,key")
    ] = None,
    sort_by: Annotated[
        str | None, typer.Option("--sort-by", help="a JSONPath such as .metadata.name")
    ] = None,
) -> None:
    """List records of a kind, or show one."""
    cls, client = _kind(kind), _client(project)
    where_ = None if all_projects else client.config.project
    if name and (all_projects or selector):
        raise ZunctlError("-A and -l list: to show one record give no -A or -l", code=2)
    key = _sort_key(sort_by)
    if watch:
        table = Table(cls, output == "wide", all_projects)
        return _watch(client, table, where_, name, output, selector)
    if name:
        data = client.need(cls, name, where_)
    else:
        params = {"labelSelector": selector} if selector else {}
        data = client.request("GET", path_of(cls, where_), params=params)
        if key is not None:
            data["items"].sort(key=key)
    try:
        show(
            cls, data, output, many=name is None, all_projects=all_projects, ordered=key is not None
        )
    except ValueError as exc:
        raise ZunctlError(str(exc), code=2) from None
    return None


def _sort_key(path: str | None) -> Callable[[Any], Any] | None:
    if path is None:
        return None
    try:
        return sort_key(path)
    except JsonPathError as exc:
        raise ZunctlError(f"--sort-by: {exc}", code=2) from None


def _watch(
    client: Client,
    table: Table,
    project: str | None,
    name: str | None,
    output: str | None,
    selector: str | None = None,
) -> None:
    """The current records, then every change, one line each (EVENT first, as kubectl's
    --output-watch-events); columns sized by the header and the current records."""
    path = path_of(table.cls, project)
    selected = {"labelSelector": selector} if selector else {}
    listing = client.request("GET", path, params=selected)
    items = [o for o in listing["items"] if not name or o["metadata"]["name"] == name]
    rows = [["EVENT", *table.header()], *(["ADDED", *table.row(o)] for o in items)]
    sizes = widths([r[:-1] for r in rows])
    if output in (None, "wide"):
        for r in rows:
            print(line(r, sizes, None), flush=True)
    for o in items if output in ("json", "yaml") else []:
        show(table.cls, {"type": "ADDED", "object": o}, output, many=False)
    for o in items if output not in (None, "wide", "json", "yaml") else []:
        show(table.cls, o, output, many=False)
    since = listing.get("metadata", {}).get("resourceVersion")
    for event in client.watch(path, since, selector):
        obj = event.get("object", {})
        if event.get("type") == "ERROR":
            raise ZunctlError(obj.get("message", "watch ended"))
        if name and obj.get("metadata", {}).get("name") != name:
            continue
        if output in ("json", "yaml"):
            show(table.cls, event, output, many=False)
        elif output not in (None, "wide"):
            show(table.cls, obj, output, many=False)
        else:
            print(line([event.get("type", ""), *table.row(obj)], sizes, None), flush=True)


@app.command()
def describe(kind: str, name: str, project: Project = None) -> None:
    """Spec, status, conditions and recent events of one record."""
    cls, client = _kind(kind), _client(project)
    describe_record(client, cls, client.need(cls, name, client.config.project))


@app.command()
def delete(
    kind: Annotated[str | None, typer.Argument()] = None,
    name: Annotated[str | None, typer.Argument()] = None,
    filename: Annotated[str | None, typer.Option("--filename", "-f")] = None,
    project: Project = None,
    wait: Annotated[bool, typer.Option("--wait", help="until the record is gone")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to --wait")] = 120.0,
    cascade: Annotated[
        str,
        typer.Option(
            "--cascade",
            help="background (the default: what it owns goes after it), foreground (it goes "
            "after what it owns) or orphan (what it owns stays)",
        ),
    ] = "background",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="remove the record's finalizers: it goes at once, and what it made outside "
            "(engine containers, services) is left as it is",
        ),
    ] = False,
) -> None:
    """Delete a record (KIND NAME) or every object of manifests (-f)."""
    policy = _cascade(cascade)
    client = _client(project)
    if filename:
        targets = [
            (m.cls, m.name, m.project) for m in read_manifests(filename, client.config.project)
        ]
    elif kind and name:
        targets = [(_kind(kind), name, client.config.project)]
    else:
        raise ZunctlError("say what to delete: KIND NAME or -f FILE", code=2)
    for cls, obj_name, obj_project in targets:
        if force:
            _force_delete(client, cls, obj_name, obj_project)
        else:
            _delete(client, cls, obj_name, obj_project, wait, timeout, policy)


def _force_delete(client: Client, cls: type[Resource], name: str, project: str | None) -> None:
    """Delete, then empty the finalizers of what is left: the store removes the record, and
    no controller cleans up outside after it. Says so."""
    ref = f"{cls.KIND.kind.lower()}.{GROUP}/{name}"
    client.need(cls, name, project)
    live = client.request("DELETE", path_of(cls, project, name))
    held = (live or {}).get("metadata", {}).get("finalizers") or []
    if held:
        _drop_finalizers(client, path_of(cls, project, name))
    print(f"{ref} force-deleted", flush=True)
    if held:
        print(
            f"warning: {ref}: finalizers {', '.join(held)} removed; whatever it made or held "
            "outside the store (engine containers, services, volumes) is left as it is",
            file=sys.stderr,
            flush=True,
        )


def _drop_finalizers(client: Client, path: str, attempts: int = 5) -> None:
    """Empty a record's finalizers; a controller's status write in between (409) is retried,
    a record already gone (404) is what was wanted."""
    for attempt in range(attempts):
        try:
            client.request("PATCH", path, json={"metadata": {"finalizers": []}})
            return
        except ZunctlError as exc:
            if exc.status == 404:
                return
            if exc.status != 409 or attempt == attempts - 1:
                raise


def _cascade(value: str) -> str:
    """kubectl's --cascade value as the API's propagationPolicy."""
    policies = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}
    if value not in policies:
        raise ZunctlError(f"--cascade: must be background, foreground or orphan, not {value!r}", 2)
    return policies[value]


def _delete(
    client: Client,
    cls: type[Resource],
    name: str,
    project: str | None,
    wait: bool,
    timeout: float,
    policy: str = "Background",
) -> None:
    ref = f"{cls.KIND.kind.lower()}.{GROUP}/{name}"
    client.need(cls, name, project)
    params = {"propagationPolicy": policy}
    client.request("DELETE", path_of(cls, project, name), params=params)
    if not wait:
        print(f"{ref} deleted", flush=True)
        return
    deadline, since = time.monotonic() + timeout, time.monotonic()
    with console.status(f"{ref} deleting") as status:
        while (live := client.get(cls, name, project)) is not None:
            if time.monotonic() > deadline:
                raise ZunctlError(f"{where(cls, name, project)} still there after {timeout:g}s")
            phase = (live.get("status") or {}).get("phase") or "Deleting"
            status.update(f"{ref} deleting: {phase} ({time.monotonic() - since:.0f}s)")
            time.sleep(0.5)
    print(f"{ref} deleted", flush=True)


@app.command()
def logs(
    name: str,
    project: Project = None,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    tail: Annotated[int | None, typer.Option("--tail", help="last N lines")] = None,
) -> None:
    """stdout and stderr of a Container."""
    client = _client(project)
    client.need(Container, name, client.config.project)
    params: dict[str, str] = {"follow": str(follow).lower()}
    if tail is not None:
        params["tailLines"] = str(tail)
    path = path_of(Container, client.config.project, name) + "/log"
    for chunk in client.stream("GET", path, params=params):
        sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()


@app.command("exec", context_settings={"allow_interspersed_args": False})
def exec_(
    name: str,
    command: Annotated[list[str], typer.Argument(help="-- CMD ARG...")],
    project: Project = None,
) -> None:
    """Run a command in a Container; exits with the command's exit code."""
    command = command[1:] if command[:1] == ["--"] else command
    if not command:
        raise ZunctlError("say what to run: zunctl exec NAME -- CMD...", code=2)
    client = _client(project)
    client.need(Container, name, client.config.project)
    path = path_of(Container, client.config.project, name) + "/exec"
    result = client.request("POST", path, json={"command": command})
    sys.stdout.write(result["output"])
    sys.stdout.flush()
    if result["exitCode"]:
        raise typer.Exit(result["exitCode"])


zunctl_rollout.register(app)
zunctl_edit.register(app)


def main() -> None:
    try:
        command = typer.main.get_command(app)
        argv = hoist(sys.argv[1:], command)
        code = command.main(argv, prog_name="zunctl", standalone_mode=False)
    except ZunctlError as exc:
        print(f"zunctl: {exc}", file=sys.stderr)
        sys.exit(exc.code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        usage = getattr(exc, "format_message", None)  # the command line parser's own errors
        if usage is None:
            raise
        print(f"zunctl: {usage()}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
