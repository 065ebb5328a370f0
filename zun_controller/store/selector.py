"""Kubernetes label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from zun_controller.errors import InvalidError

Matcher = Callable[[Mapping[str, str]], bool]
_SET = re.compile(r"^\s*(!?)([A-Za-z0-9./_-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split(selector: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def _requirement(text: str) -> Matcher:
    if m := _EQ.match(text):
        key, op, value = m.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _SET.match(text):
        neg, key, op, values = m.groups()
        if op:
            wanted = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                return lambda labels: labels.get(key) in wanted
            return lambda labels: labels.get(key) not in wanted
        if neg:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise InvalidError.at("labelSelector", f"cannot parse requirement {text.strip()!r}")


def parse_selector(selector: str | None) -> Matcher:
    """A predicate over labels; every requirement must hold. Empty selects everything."""
    if not selector:
        return lambda labels: True
    matchers = [_requirement(part) for part in _split(selector)]
    return lambda labels: all(m(labels) for m in matchers)
