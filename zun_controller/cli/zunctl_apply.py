"""`zunctl apply`, `diff` and `delete -f`: manifests (files, directories, stdin; multi-document
YAML) compared with what the API holds, created or updated one object at a time."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zun_controller.cli.zunctl_client import Client, ZunctlError, path_of
from zun_controller.errors import InvalidError
from zun_controller.models.base import GROUP, Resource, Scope
from zun_controller.models.registry import by_kind, parse
from zun_controller.models.safe_yaml import load_all


@dataclass
class Manifest:
    cls: type[Resource]
    data: dict[str, Any]
    source: str

    @property
    def name(self) -> str:
        return str(self.data["metadata"]["name"])

    @property
    def project(self) -> str | None:
        project = self.data["metadata"].get("project")
        return str(project) if project else None

    @property
    def ref(self) -> str:
        return f"{self.cls.KIND.kind.lower()}.{GROUP}/{self.name}"


def read_manifests(target: str, default_project: str) -> list[Manifest]:
    out = []
    for source, text in _texts(target):
        try:
            docs = load_all(text, source)
        except InvalidError as exc:
            raise ZunctlError(str(exc)) from None
        out += [_manifest(doc, source, default_project) for doc in docs]
    return out


def _texts(target: str) -> list[tuple[str, str]]:
    if target == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        return [(str(p), p.read_text()) for p in files]
    if not path.is_file():
        raise ZunctlError(f"{target}: no such file or directory")
    return [(target, path.read_text())]


def _manifest(doc: Any, source: str, default_project: str) -> Manifest:
    try:
        if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
            obj = parse({**doc, "metadata": _placed(doc, default_project)})
        else:
            obj = parse(doc)
    except InvalidError as exc:
        raise ZunctlError(f"{source}: {exc}") from None
    return Manifest(type(obj), obj.to_wire(), source)


def _placed(doc: dict[str, Any], default_project: str) -> dict[str, Any]:
    meta = dict(doc["metadata"])
    if by_kind(str(doc.get("kind"))).KIND.scope is Scope.PROJECT:
        meta.setdefault("project", default_project)
    return meta


def _desired(m: Manifest, live: dict[str, Any]) -> dict[str, Any]:
    """The live record with the manifest's spec, labels and annotations."""
    meta = {**live["metadata"]}
    for key in ("labels", "annotations"):
        meta[key] = m.data["metadata"].get(key, {})
    return {**live, "metadata": meta, "spec": m.data.get("spec")}


def _same(m: Manifest, live: dict[str, Any]) -> bool:
    want = _desired(m, live)
    keys = ("labels", "annotations")
    return want["spec"] == live.get("spec") and all(
        want["metadata"].get(k, {}) == live["metadata"].get(k, {}) for k in keys
    )


def apply_one(client: Client, m: Manifest) -> str:
    live = client.get(m.cls, m.name, m.project)
    if live is None:
        client.request("POST", path_of(m.cls, m.project), json=m.data)
        return f"{m.ref} created"
    if _same(m, live):
        return f"{m.ref} unchanged"
    client.request("PUT", path_of(m.cls, m.project, m.name), json=_desired(m, live))
    return f"{m.ref} configured"


def diff_one(client: Client, m: Manifest) -> str:
    """A unified diff of live and desired (empty when the same)."""
    live = client.get(m.cls, m.name, m.project)
    before = _comparable(live) if live else {}
    after = _comparable(_desired(m, live) if live else m.data)
    if before == after:
        return ""
    lines = difflib.unified_diff(
        yaml.safe_dump(before, sort_keys=True).splitlines(),
        yaml.safe_dump(after, sort_keys=True).splitlines(),
        f"live/{m.ref}",
        f"desired/{m.ref}",
        lineterm="",
    )
    return "\n".join(lines)


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata", {})
    return {
        "metadata": {k: meta.get(k, {}) for k in ("labels", "annotations")},
        "spec": obj.get("spec"),
    }
