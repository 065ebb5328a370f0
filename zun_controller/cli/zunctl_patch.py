"""Edits `zunctl label`, `annotate` and `patch` make to a record, as pure functions.

- Label and annotation changes are kubectl's: `key=value` sets, `key-` removes; a key that
  has another value already is changed only with `overwrite`. They become a merge patch of
  `metadata.labels` / `metadata.annotations` (null removes a key).
- A JSON patch (RFC 6902: add, remove, replace, move, copy, test, with RFC 6901 pointers) is
  applied here to the record as read, then written back whole (the API takes merge patches
  only); it may touch what the API lets a write change — spec, metadata.labels,
  metadata.annotations, metadata.finalizers — and nothing else.
Every error is a `PatchError` naming the flag, argument or operation at fault."""

from __future__ import annotations

import copy
import json
from typing import Any

WRITABLE = ("/spec", "/metadata/labels", "/metadata/annotations", "/metadata/finalizers")


class PatchError(ValueError):
    """The change cannot be made as given."""


def changes(args: list[str], what: str) -> dict[str, str | None]:
    """`key=value` and `key-` arguments as key -> value (None: remove)."""
    out: dict[str, str | None] = {}
    for arg in args:
        value: str | None
        if "=" in arg:
            key, _, value = arg.partition("=")
        elif arg.endswith("-"):
            key, value = arg[:-1], None
        else:
            raise PatchError(f"{what}: {arg!r} is neither key=value nor key- (which removes key)")
        if not key:
            raise PatchError(f"{what}: {arg!r} has no key")
        out[key] = value
    if not out:
        raise PatchError(f"{what}: give at least one key=value or key-")
    return out


def meta_patch(
    live: dict[str, str], wanted: dict[str, str | None], field: str, overwrite: bool
) -> dict[str, Any]:
    """The merge patch of `metadata.<field>` (labels or annotations) that makes `wanted`."""
    for key, value in wanted.items():
        if value is not None and key in live and live[key] != value and not overwrite:
            raise PatchError(
                f"{field}: {key!r} already has the value {live[key]!r}; --overwrite changes it"
            )
    return {"metadata": {field: dict(wanted)}}


def parse_json(text: str, flag: str = "--patch") -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PatchError(f"{flag}: not JSON: {exc}") from None


def _pointer(path: Any, n: int) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"--patch: operation {n}: path must be a JSON pointer such as /spec/image")
    if not any(path == w or path.startswith(w + "/") for w in WRITABLE):
        raise PatchError(
            f"--patch: operation {n}: {path!r} cannot be changed; patch under {', '.join(WRITABLE)}"
        )
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _parent(doc: Any, parts: list[str], n: int) -> Any:
    for part in parts[:-1]:
        doc = _child(doc, part, n)
    return doc


def _child(doc: Any, part: str, n: int) -> Any:
    try:
        return doc[int(part)] if isinstance(doc, list) else doc[part]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"--patch: operation {n}: no {part!r} there") from None


def _get(doc: Any, parts: list[str], n: int) -> Any:
    return _child(_parent(doc, parts, n), parts[-1], n)


def _add(doc: Any, parts: list[str], value: Any, n: int) -> None:
    parent, last = _parent(doc, parts, n), parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise PatchError(f"--patch: operation {n}: index {last!r} is out of range")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError(f"--patch: operation {n}: {last!r} is not inside an object or list")


def _remove(doc: Any, parts: list[str], n: int) -> Any:
    parent, last = _parent(doc, parts, n), parts[-1]
    value = _child(parent, last, n)
    del parent[int(last) if isinstance(parent, list) else last]
    return value


def _apply_one(doc: Any, op: Any, n: int) -> None:
    if not isinstance(op, dict) or "op" not in op or "path" not in op:
        raise PatchError(f"--patch: operation {n}: needs op and path")
    kind, parts = op["op"], _pointer(op["path"], n)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"--patch: operation {n}: {kind} needs a value")
    if kind == "add":
        _add(doc, parts, copy.deepcopy(op["value"]), n)
    elif kind == "remove":
        _remove(doc, parts, n)
    elif kind == "replace":
        _remove(doc, parts, n)
        _add(doc, parts, copy.deepcopy(op["value"]), n)
    elif kind in ("move", "copy"):
        source = _pointer(op.get("from"), n)
        value = _remove(doc, source, n) if kind == "move" else copy.deepcopy(_get(doc, source, n))
        _add(doc, parts, value, n)
    elif kind == "test":
        if _get(doc, parts, n) != op["value"]:
            raise PatchError(f"--patch: operation {n}: test of {op['path']!r} failed")
    else:
        raise PatchError(f"--patch: operation {n}: unknown op {kind!r}")


def json_patch(doc: dict[str, Any], ops: Any) -> dict[str, Any]:
    """`doc` with the RFC 6902 operations `ops` applied (all, or none: a `PatchError`)."""
    if not isinstance(ops, list):
        raise PatchError("--patch: a JSON patch is a list of operations, [{op, path, value}]")
    out = copy.deepcopy(doc)
    for n, op in enumerate(ops):
        _apply_one(out, op, n)
    return out
