"""`zunctl token list | create | revoke`: the API's tokens (`…/v1alpha1/tokens`). A list is a
table that fits 80 columns (long project lists, then names, are cut with `…`), or `-o json|yaml`;
no answer of the API holds a secret except `create`'s, which prints the token once."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from zun_controller.cli.zunctl_client import PREFIX, Client, Config, ZunctlError
from zun_controller.cli.zunctl_output import age, dump, span

app = typer.Typer(help="API tokens: list, create, revoke.", no_args_is_help=True)
PATH = f"{PREFIX}/tokens"
COLUMNS = ("NAME", "ROLE", "PROJECTS", "EXPIRES", "LAST USED", "AGE")
WIDTH, GAP = 80, 3


def _client() -> Client:
    return Client(Config.load())


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def expires(value: str | None, now: datetime) -> str:
    """`in 89d`, `expired`, or `never`."""
    when = _when(value)
    if when is None:
        return "never"
    if when <= now:
        return "expired"
    return "in " + span(int((when - now).total_seconds()))


def used(value: str | None, now: datetime) -> str:
    return "<none>" if not value else age(value, now=now) + " ago"


def cells(token: dict[str, Any], now: datetime) -> list[str]:
    projects = ",".join(token.get("projects") or []) or "*"
    return [
        str(token.get("name", "")),
        str(token.get("role", "")),
        projects,
        expires(token.get("expiresAt"), now),
        used(token.get("lastUsedAt"), now),
        age(token.get("createdAt"), now=now),
    ]


def fit(rows: list[list[str]], width: int = WIDTH) -> list[str]:
    """Rows as aligned lines at most `width` long: PROJECTS, then NAME, are cut (`…`) to fit."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for column in (COLUMNS.index("PROJECTS"), COLUMNS.index("NAME")):
        over = sum(widths) + GAP * (len(widths) - 1) - width
        if over > 0:
            widths[column] = max(widths[column] - over, len(COLUMNS[column]), 8)
    lines = []
    for row in rows:
        cut = [_cut(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append((" " * GAP).join(cut).rstrip())
    return lines


def _cut(cell: str, width: int) -> str:
    return cell if len(cell) <= width else cell[: width - 1] + "…"


def table(items: list[dict[str, Any]], now: datetime | None = None) -> list[str]:
    """The tokens as a table of at most 80 columns (a header line, then one line a token)."""
    now = now or datetime.now(UTC)
    return fit([list(COLUMNS), *(cells(token, now) for token in items)])


Output = Annotated[str | None, typer.Option("--output", "-o", help="json|yaml")]


@app.command("list")
def list_(output: Output = None) -> None:
    """List tokens, without their secrets (admins only).

    Name, role, projects (`*`: every project, an admin's), when it expires, when it was last
    used (to the minute) and its age."""
    data = _client().request("GET", PATH)
    if output in ("json", "yaml"):
        dump(data, output)
    elif output is not None:
        raise ZunctlError(f"unknown output format {output!r}: use json or yaml", code=2)
    elif not data["items"]:
        print("No tokens found.")
    else:
        print("\n".join(table(data["items"])))


@app.command()
def create(
    name: str,
    role: Annotated[str, typer.Option("--role", help="admin, member or reader")] = "member",
    project: Annotated[list[str] | None, typer.Option("--project", "-p", help="repeatable")] = None,
    lifetime: Annotated[
        str | None,
        typer.Option("--lifetime", help="e.g. 90d, 12h, 1h30m, or never [the server's default]"),
    ] = None,
) -> None:
    """Make a token (admins only) and print it, once."""
    body: dict[str, Any] = {"name": name, "role": role, "projects": project or []}
    if lifetime is not None:
        body["lifetime"] = lifetime
    made = _client().request("POST", PATH, json=body)
    print(made["token"])
    print(f"expires: {made.get('expiresAt') or 'never'}", file=sys.stderr)


@app.command()
def revoke(name: str) -> None:
    """Revoke tokens: every one named NAME (admins), or the one you call with.

    From then on every API replica refuses it."""
    done = _client().request("DELETE", f"{PATH}/{name}")
    count = done.get("revoked", 0)
    print(f"token/{name} revoked" + (f" ({count} tokens)" if count != 1 else ""))
