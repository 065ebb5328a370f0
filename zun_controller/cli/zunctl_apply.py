"""`zunctl apply`, `diff` and `delete -f`: manifests (files, directories, stdin; multi-document
YAML) compared with what the API holds, created or updated one object at a time.

Ownership (models/ownership.py): an apply with an apply-set (`--prune` / `--applyset`) changes
only records that apply-set owns, or new ones; one another writer owns is refused with a line
naming the owner (`OwnedElsewhere`), unless the manifest carries `zun.openstack.org/adopt:
"true"` or `--force-conflicts` is given. An apply without an apply-set is a hand edit: it keeps
the live record's writer markers (labels `zun.openstack.org/gitops-repository`, `.../applyset`,
annotation `.../source`), so the record stays its writer's, which puts its own spec back.

A record still being deleted (an earlier `delete` whose finalizers have not run yet, say
because the controller was down) is waited for, then made again: applied to it, the manifest
would go with it."""

from __future__ import annotations

import difflib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from zun_controller.cli.zunctl_client import Client, ZunctlError, path_of
from zun_controller.errors import InvalidError
from zun_controller.models.base import GROUP, ObjectMeta, Resource, Scope
from zun_controller.models.ownership import (
    APPLYSET,
    GITOPS_REPOSITORY,
    SOURCE,
    adopts,
    applyset,
    conflict,
    owner_of,
)
from zun_controller.models.registry import by_kind, parse
from zun_controller.models.safe_yaml import load_all

_MARKER_LABELS = (GITOPS_REPOSITORY, APPLYSET)
#: seconds `apply` waits for a record being deleted to be gone before making it again
TERMINATING_WAIT_S = 120.0
TERMINATING_POLL_S = 0.5
ADOPT_HOW = '--force-conflicts or annotation zun.openstack.org/adopt: "true"'


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


class OwnedElsewhere(ZunctlError):
    """The manifest names a record another writer owns; nothing was changed."""


def _desired(m: Manifest, live: dict[str, Any]) -> dict[str, Any]:
    """The live record with the manifest's spec, labels and annotations (a hand apply keeps
    the live writer markers)."""
    meta = {**live["metadata"]}
    for key in ("labels", "annotations"):
        meta[key] = dict(m.data["metadata"].get(key, {}))
    if APPLYSET not in meta["labels"]:
        _keep_markers(meta, live["metadata"])
    return {**live, "metadata": meta, "spec": m.data.get("spec")}


def _keep_markers(meta: dict[str, Any], live: dict[str, Any]) -> None:
    labels, notes = live.get("labels") or {}, live.get("annotations") or {}
    for key in _MARKER_LABELS:
        if key in labels:
            meta["labels"].setdefault(key, labels[key])
    if SOURCE in notes:
        meta["annotations"].setdefault(SOURCE, notes[SOURCE])


def check_owner(m: Manifest, live: dict[str, Any], *, force: bool) -> None:
    """For an apply-set's apply: `OwnedElsewhere` when the live record is another writer's
    and neither the manifest nor `force` says to adopt it."""
    name = m.data["metadata"].get("labels", {}).get(APPLYSET)
    if name is None or force or adopts(m.data["metadata"].get("annotations", {})):
        return
    owner = owner_of(ObjectMeta.model_validate(live["metadata"]))
    if owner != applyset(name):
        raise OwnedElsewhere(conflict(m.ref, owner, ADOPT_HOW))


def _same(m: Manifest, live: dict[str, Any]) -> bool:
    want = _desired(m, live)
    keys = ("labels", "annotations")
    return want["spec"] == live.get("spec") and all(
        want["metadata"].get(k, {}) == live["metadata"].get(k, {}) for k in keys
    )


def _unless_deleting(
    client: Client,
    m: Manifest,
    live: dict[str, Any] | None,
    wait: float,
    sleep: Callable[[float], None],
) -> dict[str, Any] | None:
    """`live`, or None once a record being deleted is gone; `ZunctlError` when it is still
    there after `wait` seconds (nothing applied to it)."""
    deadline = time.monotonic() + wait
    while live is not None and live["metadata"].get("deletionTimestamp"):
        if time.monotonic() >= deadline:
            held = ", ".join(live["metadata"].get("finalizers", [])) or "none"
            raise ZunctlError(
                f"{m.ref} is still being deleted after {wait:g}s (finalizers: {held}); not applied"
            )
        sleep(TERMINATING_POLL_S)
        live = client.get(m.cls, m.name, m.project)
    return live


def apply_one(
    client: Client,
    m: Manifest,
    *,
    force_conflicts: bool = False,
    wait: float = TERMINATING_WAIT_S,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Create or update one record; its line. `OwnedElsewhere` (nothing written) when an
    apply-set would take over another writer's record. A record being deleted is first
    waited for (up to `wait` seconds), then created again."""
    live = _unless_deleting(client, m, client.get(m.cls, m.name, m.project), wait, sleep)
    if live is None:
        client.request("POST", path_of(m.cls, m.project), json=m.data)
        return f"{m.ref} created"
    check_owner(m, live, force=force_conflicts)
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
