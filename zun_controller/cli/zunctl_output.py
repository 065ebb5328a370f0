"""How `zunctl` shows records: tables (zunctl_columns, laid out by zunctl_table), or YAML/JSON
for scripts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from rich.console import Console

from zun_controller.cli import zunctl_jsonpath as jsonpath
from zun_controller.cli.zunctl_columns import Column, age, columns, default_order, pick, span
from zun_controller.cli.zunctl_table import render, terminal_width
from zun_controller.models.base import GROUP, Resource

__all__ = ["Table", "age", "console", "dump", "pick", "progress", "ref_name", "show", "span"]

console = Console(highlight=False, soft_wrap=True)
#: progress lines (rollout status, delete --wait): stderr, so stdout stays for scripts
progress = Console(highlight=False, soft_wrap=True, stderr=True)
FORMATS = "json, yaml, wide, name or jsonpath=TEMPLATE"


@dataclass(frozen=True)
class Table:
    """How to print one kind: its columns at a width (None: never cut)."""

    cls: type[Resource]
    wide: bool = False
    all_projects: bool = False
    width: int | None = None
    now: datetime | None = None
    #: keep the items' order (`--sort-by`) instead of the kind's own (Events by time)
    ordered: bool = False

    @property
    def columns(self) -> list[Column]:
        return columns(self.cls, wide=self.wide, all_projects=self.all_projects, now=self.now)

    def header(self) -> list[str]:
        return [c.header for c in self.columns]

    def row(self, obj: dict[str, Any]) -> list[str]:
        return [c.cell(obj) for c in self.columns]

    def lines(self, items: list[dict[str, Any]]) -> list[str]:
        if not items:
            return ["No resources found."]
        items = items if self.ordered else default_order(self.cls, items)
        rows = [self.header(), *(self.row(o) for o in items)]
        return render(rows, self.width)


def dump(data: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False).rstrip())


def ref_name(cls: type[Resource], obj: dict[str, Any]) -> str:
    """`kind.group/name`, as `kubectl get -o name` prints it."""
    return f"{cls.KIND.kind.lower()}.{GROUP}/{obj['metadata']['name']}"


def show(
    cls: type[Resource],
    data: Any,
    output: str | None,
    many: bool,
    *,
    all_projects: bool = False,
    ordered: bool = False,
) -> None:
    """Print one record or a list (`many`: `data` is a list body) as `output` says; a
    ValueError names a format this does not know."""
    items = data["items"] if many else [data]
    if output in ("json", "yaml"):
        dump(data, output)
    elif output is not None and output.startswith("jsonpath="):
        try:
            print(jsonpath.render(output.removeprefix("jsonpath="), data))
        except jsonpath.JsonPathError as exc:
            raise ValueError(f"-o jsonpath: {exc}") from None
    elif output == "name":
        for obj in items:
            print(ref_name(cls, obj))
    elif output in (None, "wide"):
        table = Table(cls, output == "wide", all_projects, terminal_width(), ordered=ordered)
        print("\n".join(table.lines(items)), flush=True)
    else:
        raise ValueError(f"-o: unknown output format {output!r}: use {FORMATS}")
