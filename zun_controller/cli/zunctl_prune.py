"""`zunctl apply --prune`: an apply-set is the objects one `apply` of one source created.

Every object applied with `--prune` carries the label `zun.openstack.org/applyset=<name>` (the
name of the file or directory, or `--applyset`). After applying, the records of the project that
carry that label and are not in the manifests any more are deleted. Records without the label —
made by hand, by another apply-set, by GitOps or the bridge — are never pruned, and never taken
over by the apply (zunctl_apply.check_owner) unless adopted.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from zun_controller.cli.zunctl_apply import Manifest
from zun_controller.cli.zunctl_client import Client, ZunctlError, path_of
from zun_controller.models.base import GROUP, Scope
from zun_controller.models.ownership import APPLYSET
from zun_controller.models.registry import kinds

_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def applyset_name(filename: str, given: str | None) -> str:
    if given:
        return given
    if filename == "-":
        raise ZunctlError("--prune with stdin needs --applyset NAME", code=2)
    name = _NAME.sub("-", Path(filename).resolve().name).strip("-.") or "root"
    return name[:63]


def label(manifests: list[Manifest], name: str) -> None:
    for m in manifests:
        m.data["metadata"].setdefault("labels", {})[APPLYSET] = name


def prune(client: Client, manifests: list[Manifest], name: str, project: str) -> list[str]:
    """Delete the apply-set's records the manifests no longer name; what was pruned."""
    keep = {(m.cls.KIND.kind, m.name) for m in manifests}
    selector = quote(f"{APPLYSET}={name}")
    pruned = []
    for cls in kinds():
        if cls.KIND.scope is not Scope.PROJECT:
            continue
        listing = client.request("GET", f"{path_of(cls, project)}?labelSelector={selector}")
        for item in listing.get("items", []):
            obj_name = item["metadata"]["name"]
            if (cls.KIND.kind, obj_name) in keep or item["metadata"].get("deletionTimestamp"):
                continue
            client.request("DELETE", path_of(cls, project, obj_name))
            pruned.append(f"{cls.KIND.kind.lower()}.{GROUP}/{obj_name} pruned")
    return pruned
