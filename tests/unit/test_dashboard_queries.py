"""Every metric the Grafana dashboard and the alert rules query is one the controller exports
(a renamed or dropped series would leave a panel empty or an alert silent). Whether each
query returns data is the e2e test's (tests/e2e/test_observability_e2e.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from zun_controller.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "vector", "or", "and", "unless", "on", "ignoring", "clamp_min",
    "clamp_max", "abs", "absent", "time", "bool", "topk", "bottomk", "offset",
}  # fmt: skip


def _queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "zun-controller.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return exprs


def _metric_names(expr: str) -> set[str]:
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)|\"[^\"]*\"", " ", expr)
    bare = re.sub(r"\b\d[\d.]*(?:e-?\d+)?\b", " ", bare)  # numbers such as 1e-9
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
    return words - _PROMQL_WORDS


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def _exported() -> set[str]:
    """Every series name the registry can expose, whether or not it has children yet."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return names


def test_every_queried_metric_is_exported() -> None:
    exported, queries = _exported(), _queries()
    assert len(queries) > 20
    missing = {name: q for q in queries for name in _metric_names(q) if name not in exported}
    assert not missing, missing


def test_the_query_parser_finds_metric_names_only() -> None:
    expr = 'histogram_quantile(0.99, sum by (kind, le) (rate(zun_x_bucket{a="b c"}[5m]))) > 1e-9'
    assert _metric_names(expr) == {"zun_x_bucket"}
