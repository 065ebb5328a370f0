"""Zun's create and update bodies as Container records (the package README's mapping).

`name` becomes the record's name when it is a DNS-1123 label, else the record is named
`zun-<hex>` and the Zun name kept in an annotation; no name gives `zun-<hex>` as upstream
does. `memory` is MiB (a number, or a string with b/k/m/g); `cpu` is cores; `command` a list
(1.20+) or a shell-quoted string; `environment` and `labels` maps; `restart_policy`
{"Name": no|always|on-failure|unless-stopped}; `exposed_ports` {"8080/tcp": {}} publish on
127.0.0.1 at a port the engine picks; `image_pull_policy` ifnotpresent|always|never is
`spec.imagePullPolicy` (unset: Kubernetes' default for the tag); the record name of a resolved
`registry` (a PullSecret, registries.py) is `spec.imagePullSecrets`. Fields with no meaning
here (security_groups, nets, mounts, image_driver, ...) are accepted and ignored, as a Zun
without Neutron or Cinder would.
"""

from __future__ import annotations

import re
import secrets
import shlex
from typing import Any

from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.view import NAME_ANNOTATION
from zun_controller.errors import InvalidError
from zun_controller.models.container import Container, DesiredState
from zun_controller.models.image import ImagePullPolicy
from zun_controller.models.registry import parse

_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ZUN_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_MEMORY = re.compile(r"^([0-9]+)\s*([bkmg]?)b?$", re.IGNORECASE)
_UNITS = {"": 2**20, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
_RESTART = {"no": "Never", "always": "Always", "on-failure": "OnFailure"}
_RESTART["unless-stopped"] = "Always"
PULL_POLICIES = {
    "ifnotpresent": ImagePullPolicy.IF_NOT_PRESENT,
    "always": ImagePullPolicy.ALWAYS,
    "never": ImagePullPolicy.NEVER,
}


def memory_bytes(value: Any) -> int:
    match = _MEMORY.match(str(value).strip())
    if not match or isinstance(value, bool):
        raise ZunV1Error(400, f"Invalid memory {value!r}: use MiB (512) or a unit (512m, 1g)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def command_list(value: Any) -> list[str] | None:
    if value in (None, "", []):
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, str):
        return shlex.split(value)
    raise ZunV1Error(400, "Invalid command: a list of strings or a string")


def record_name(zun_name: str | None) -> tuple[str, dict[str, str]]:
    """The record's name and the annotations that keep the Zun name when they differ."""
    if zun_name is None:
        return f"zun-{secrets.token_hex(8)}", {}
    if not _ZUN_NAME.match(zun_name) or len(zun_name) > 255:
        raise ZunV1Error(400, f"Invalid name {zun_name!r}: [a-zA-Z0-9][a-zA-Z0-9_.-]+")
    if _DNS.match(zun_name):
        return zun_name, {}
    return f"zun-{secrets.token_hex(8)}", {NAME_ANNOTATION: zun_name}


def _ports(exposed: Any) -> list[dict[str, Any]]:
    if not exposed:
        return []
    if not isinstance(exposed, dict):
        raise ZunV1Error(400, 'Invalid exposed_ports: a map such as {"8080/tcp": {}}')
    out = []
    for key in exposed:
        port, _, proto = str(key).partition("/")
        if not port.isdigit():
            raise ZunV1Error(400, f"Invalid exposed port {key!r}")
        out.append({"containerPort": int(port), "protocol": (proto or "tcp").upper()})
    return out


def _restart(policy: Any) -> str:
    name = (policy or {}).get("Name", "no") if isinstance(policy, dict) else "no"
    if name not in _RESTART:
        raise ZunV1Error(400, f"Invalid restart_policy Name {name!r}: {', '.join(_RESTART)}")
    return _RESTART[name]


def pull_policy(value: Any) -> str | None:
    """Zun's `image_pull_policy` as the record's; None when not given."""
    if value in (None, ""):
        return None
    if not isinstance(value, str) or value.lower() not in PULL_POLICIES:
        raise ZunV1Error(
            400,
            f"Invalid input for field/attribute image_pull_policy: {value!r} is not one of "
            f"{', '.join(PULL_POLICIES)}",
        )
    return PULL_POLICIES[value.lower()].value


def _resources(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.get("cpu") is not None:
        out["cpu"] = body["cpu"]
    if body.get("memory") not in (None, ""):
        out["memory"] = memory_bytes(body["memory"])
    return out


def spec_of(body: dict[str, Any], run: bool, pull_secret: str | None = None) -> dict[str, Any]:
    if not isinstance(body.get("image"), str) or not body["image"]:
        raise ZunV1Error(400, "Invalid input for field/attribute image: required")
    env = body.get("environment") or {}
    spec: dict[str, Any] = {
        "image": body["image"],
        "env": [{"name": k, "value": str(v)} for k, v in dict(env).items()],
        "labels": dict(body.get("labels") or {}),
        "ports": _ports(body.get("exposed_ports")),
        "resources": _resources(body),
        "restartPolicy": _restart(body.get("restart_policy")),
        "state": (DesiredState.RUNNING if run else DesiredState.STOPPED).value,
        "imagePullPolicy": pull_policy(body.get("image_pull_policy")),
        "imagePullSecrets": [{"name": pull_secret}] if pull_secret else None,
    }
    entrypoint, command = command_list(body.get("entrypoint")), command_list(body.get("command"))
    spec["command"], spec["args"] = entrypoint, command  # Kubernetes' names: see the README
    for key in ("workdir", "hostname", "runtime"):
        if body.get(key):
            spec[key] = body[key]
    return {k: v for k, v in spec.items() if v is not None}


def container_of(
    body: dict[str, Any], project: str, run: bool, pull_secret: str | None = None
) -> Container:
    """The record a Zun create body asks for (400 naming the field when it cannot be one);
    `pull_secret` is the record name of the PullSecret its `registry` names."""
    if not isinstance(body, dict):
        raise ZunV1Error(400, "The request body must be a JSON object")
    name, annotations = record_name(body.get("name"))
    data = {
        "kind": "Container",
        "apiVersion": "zun.openstack.org/v1alpha1",
        "metadata": {"name": name, "project": project, "annotations": annotations},
        "spec": spec_of(body, run, pull_secret),
    }
    try:
        obj = parse(data)
    except InvalidError as exc:
        raise ZunV1Error(400, f"Invalid input: {exc}") from None
    assert isinstance(obj, Container)
    return obj
