"""A small, safe subset of kubectl's JSONPath for `-o jsonpath=...` and `--sort-by`.

A template is text with `{...}` expressions: `{.metadata.name}`, `{.status.phase}`,
`{.items[*].metadata.name}`, `{.items[0].spec.image}`; a field name is letters, digits, `_`
and `-`; `[*]` takes every element and `[N]` one. The values an expression reaches are
printed separated by spaces (lists and mappings as JSON), a missing field as nothing (as
kubectl's default --allow-missing-template-keys). Anything else — filters `[?()]`, `..`,
ranges, functions, `{range}` — is a `JsonPathError` naming the expression: nothing is
evaluated but field and index lookups."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\*|\d+)\]")
_EXPR = re.compile(r"\{([^{}]*)\}")


class JsonPathError(ValueError):
    """A template outside the subset."""


def steps(expr: str) -> list[str | int | None]:
    """The lookups of one expression: a field name, an index, or None for `[*]`."""
    text = expr.strip()
    if not text.startswith((".", "[")):
        raise JsonPathError(f"{{{expr}}}: an expression starts with '.', as {{.metadata.name}}")
    out: list[str | int | None] = []
    pos = 0
    while pos < len(text):
        found = _STEP.match(text, pos)
        if found is None:
            raise JsonPathError(
                f"{{{expr}}}: only .field, [N] and [*] are supported, not {text[pos:]!r}"
            )
        name, index = found.groups()
        out.append(name if name is not None else (None if index == "*" else int(index)))
        pos = found.end()
    return out


def _has(value: Any, step: str | int | None) -> bool:
    if isinstance(step, int):
        return isinstance(value, list) and step < len(value)
    return isinstance(step, str) and isinstance(value, dict) and step in value


def values(data: Any, path: list[str | int | None]) -> list[Any]:
    """What `path` reaches in `data` (nothing where a field or index is missing)."""
    found = [data]
    for step in path:
        nxt: list[Any] = []
        for v in found:
            if step is None and isinstance(v, list):
                nxt.extend(v)
            elif _has(v, step):
                nxt.append(v[step])
        found = nxt
    return found


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def render(template: str, data: Any) -> str:
    """The template with each expression replaced by what it reaches in `data`."""
    if template.count("{") != template.count("}"):
        raise JsonPathError(f"{template!r}: unbalanced braces")
    out, pos = [], 0
    for found in _EXPR.finditer(template):
        out.append(template[pos : found.start()])
        out.append(" ".join(_text(v) for v in values(data, steps(found.group(1)))))
        pos = found.end()
    out.append(template[pos:])
    return "".join(out)


def sort_key(path: str) -> Callable[[Any], tuple[int, float, str]]:
    """A key function for `--sort-by PATH` (`.metadata.name` or `{.metadata.name}`): records
    without the field first, then numbers by value, then the rest as text."""
    expr = path.strip()
    expr = expr[1:-1] if expr.startswith("{") and expr.endswith("}") else expr
    parsed = steps(expr)

    def key(obj: Any) -> tuple[int, float, str]:
        found = values(obj, parsed)
        if not found:
            return (0, 0.0, "")
        v = found[0]
        if isinstance(v, int | float) and not isinstance(v, bool):
            return (1, float(v), "")
        return (2, 0.0, _text(v))

    return key
