"""CustomResourceDefinitions generated from the models, so `kubectl` speaks the same kinds.

A project is a Kubernetes namespace: project-scoped kinds are Namespaced, the others Cluster.
Schemas are the models' own (validation mode), made structural as the apiserver requires:
references inlined, `X | None` as `nullable`, `int | str` as `x-kubernetes-int-or-string`,
titles and other keywords Kubernetes does not take dropped. Status is a subresource.
"""

from __future__ import annotations

from typing import Any

from zun_controller.models.base import GROUP, VERSION, Resource, Scope

_DROP = {
    *("title", "$defs", "discriminator", "const", "examples", "readOnly", "writeOnly"),
    "propertyNames",
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_inline(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _inline({**target, **extra}, defs)
    out = {k: _inline(v, defs) for k, v in node.items() if k not in _DROP and k != "properties"}
    if "properties" in node:  # property names are data, never keywords to drop
        out["properties"] = {k: _inline(v, defs) for k, v in node["properties"].items()}
    return out


def _structural(node_in: Any) -> Any:
    """Rewrite unions the apiserver cannot take into the forms it can."""
    if isinstance(node_in, list):
        return [_structural(n) for n in node_in]
    if not isinstance(node_in, dict):
        return node_in
    node = {k: _structural(v) for k, v in node_in.items() if k != "properties"}
    if "properties" in node_in:
        node["properties"] = {k: _structural(v) for k, v in node_in["properties"].items()}
    options = node.pop("anyOf", None)
    if options is None:
        return _tidy(node)
    kinds = [o for o in options if o.get("type") != "null"]
    nullable = len(kinds) < len(options)
    types = {o.get("type") for o in kinds}
    if len(kinds) == 1:
        merged = {**kinds[0], **node}
    elif types <= {"integer", "string", "number"}:
        merged = {**node, "x-kubernetes-int-or-string": True}
    else:
        merged = {**node, "x-kubernetes-preserve-unknown-fields": True}
    if nullable:
        merged["nullable"] = True
    return _tidy(merged)


def _tidy(node: dict[str, Any]) -> dict[str, Any]:
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(node.get(exclusive), int | float) and not isinstance(node[exclusive], bool):
            node[bound], node[exclusive] = node[exclusive], True
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if node.get("default") is None and "default" in node:
        del node["default"]
    if (
        node.get("type") == "object"
        and "properties" not in node
        and "additionalProperties" not in node
    ):
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("x-kubernetes-int-or-string") and "type" in node:
        del node["type"]
    return node


def part_schema(cls: type[Resource], field: str) -> dict[str, Any]:
    schema = cls.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    prop = schema["properties"][field]
    result: dict[str, Any] = _structural(_inline(prop, defs))
    result.pop("default", None)
    return result


def _columns(cls: type[Resource]) -> list[dict[str, Any]]:
    cols = [
        {"name": header, "type": "string", "jsonPath": path} for header, path in cls.KIND.columns
    ]
    cols.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return cols


def crd(cls: type[Resource]) -> dict[str, Any]:
    info = cls.KIND
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": part_schema(cls, "spec"),
            "status": part_schema(cls, "status"),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if info.scope is Scope.PROJECT else "Cluster",
            "names": {
                "kind": info.kind,
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": list(info.short_names),
                "categories": ["zun"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _columns(cls),
                }
            ],
        },
    }
