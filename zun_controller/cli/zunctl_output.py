"""How `zunctl` shows records: tables with the kind's printer columns and AGE, or YAML/JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from zun_controller.models.base import Resource, Scope

console = Console(highlight=False, soft_wrap=True)


def pick(obj: Any, path: str) -> Any:
    """The value at a JSON path such as `.status.phase` (None when missing)."""
    for part in path.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def age(created: str | None, now: datetime | None = None) -> str:
    if not created:
        return "<unknown>"
    when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return span(int(((now or datetime.now(UTC)) - when).total_seconds()))


def span(secs: int) -> str:
    """Seconds as kubectl shows an age: `3d`, `5h`, `2m`, `40s`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{max(secs, 0)}s"


def headers(cls: type[Resource], wide: bool) -> list[str]:
    out = ["NAME"] + [h.upper() for h, _ in cls.KIND.columns] + ["AGE"]
    if cls.KIND.scope is Scope.PROJECT:
        out.insert(0, "PROJECT")
    return out + (["LABELS"] if wide else [])


def row(cls: type[Resource], obj: dict[str, Any], wide: bool) -> list[str]:
    meta = obj.get("metadata", {})
    cells = [meta.get("name", "")]
    cells += [_cell(pick(obj, path)) for _, path in cls.KIND.columns]
    cells.append(age(meta.get("creationTimestamp")))
    if cls.KIND.scope is Scope.PROJECT:
        cells.insert(0, meta.get("project", ""))
    if wide:
        cells.append(",".join(f"{k}={v}" for k, v in sorted(meta.get("labels", {}).items())))
    return cells


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def table(cls: type[Resource], items: list[dict[str, Any]], wide: bool = False) -> None:
    if not items:
        console.print("No resources found.")
        return
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for header in headers(cls, wide):
        grid.add_column(header, no_wrap=True)
    for obj in items:
        grid.add_row(*row(cls, obj, wide))
    console.print(grid)


def dump(data: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False).rstrip())


def show(cls: type[Resource], data: Any, output: str | None, many: bool) -> None:
    if output in ("json", "yaml"):
        dump(data, output)
    elif output not in (None, "wide"):
        raise ValueError(f"unknown output format {output!r}: use json, yaml or wide")
    else:
        table(cls, data["items"] if many else [data], wide=output == "wide")
