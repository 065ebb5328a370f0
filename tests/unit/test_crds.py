"""The committed CRDs are the ones the models generate today, and they are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from zun_controller.cli.crds import render
from zun_controller.models.registry import kinds

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_equal_freshly_generated_ones() -> None:
    fresh = render()
    committed = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert committed == fresh, "run `zun-controller crds` and commit crds/"


def _walk(node: Any, path: str = "") -> list[str]:
    """Places that are not structural: unions or references left in."""
    bad = []
    if isinstance(node, dict):
        for key in ("anyOf", "oneOf", "allOf", "$ref", "$defs"):
            if key in node:
                bad.append(f"{path}.{key}")
        for key, value in node.items():
            bad += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            bad += _walk(value, f"{path}[{i}]")
    return bad


def test_every_kind_has_a_structural_crd_with_status_and_columns() -> None:
    for cls in kinds():
        doc = yaml.safe_load((CRDS / f"{cls.KIND.plural}.yaml").read_text())
        version = doc["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert version["additionalPrinterColumns"][-1]["name"] == "Age"
        assert _walk(version["schema"]) == [], cls.KIND.kind
        expected = "Namespaced" if cls.KIND.scope.value == "Project" else "Cluster"
        assert doc["spec"]["scope"] == expected
