"""A Container record as upstream Zun shows a container (api-ref "Show container details"),
and its resource usage as Zun's stats show it.

Zun's status comes from the record (the mapping is the package README's table):
deleting -> Deleting; phase Error or Invalid -> Error; no engine container yet -> Creating;
an engine container made but not started (yet) -> Created; phases
Running, Stopped, Paused as they are. `task_state` says what is under way while the spec and
the phase differ (container_starting, container_stopping, container_pausing, ...), and
container_rebooting while a restart asked for is not made yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

from zun_controller.api.io import ContainerUsage
from zun_controller.api.zunv1.versions import v1_url
from zun_controller.models.base import DOMAIN, ConditionStatus
from zun_controller.models.container import Container, ContainerPhase, DesiredState
from zun_controller.models.image import effective_policy

#: the Zun name of a container, when it is not the record's name (renamed, or not a DNS label)
NAME_ANNOTATION = f"{DOMAIN}/zun-name"
MIB = 2**20
RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
_PHASES = {
    ContainerPhase.RUNNING: "Running",
    ContainerPhase.STOPPED: "Stopped",
    ContainerPhase.PAUSED: "Paused",
    ContainerPhase.DELETING: "Deleting",
    ContainerPhase.ERROR: "Error",
    "Invalid": "Error",
}
_TASKS = {
    DesiredState.RUNNING: "container_starting",
    DesiredState.STOPPED: "container_stopping",
    DesiredState.PAUSED: "container_pausing",
}


def zun_name(obj: Container) -> str:
    return obj.metadata.annotations.get(NAME_ANNOTATION, obj.name)


def status_of(obj: Container) -> str:
    if obj.metadata.deletion_timestamp:
        return "Deleting"
    phase = obj.status.phase
    if phase in _PHASES:
        return _PHASES[phase]
    if obj.status.container_id:
        return "Created"
    return "Creating"


def task_state(obj: Container) -> str | None:
    status = status_of(obj)
    if status == "Deleting":
        return "container_deleting"
    if status in ("Creating", "Error"):
        return "container_creating" if status == "Creating" else None
    want = obj.spec.state
    if want is DesiredState.RUNNING and obj.restart_pending():
        return "container_rebooting"
    settled = {
        DesiredState.RUNNING: ("Running",),
        DesiredState.STOPPED: ("Stopped", "Created"),
        DesiredState.PAUSED: ("Paused",),
    }[want]
    if status == "Paused" and want is DesiredState.RUNNING:
        return "container_unpausing"
    return None if status in settled else _TASKS[want]


def status_reason(obj: Container) -> str | None:
    ready = obj.status.condition("Ready")
    if ready is None or ready.status == ConditionStatus.TRUE:
        return None
    return f"{ready.reason}: {ready.message}" if ready.message else ready.reason


def _addresses(obj: Container) -> dict[str, list[dict[str, Any]]]:
    ports = [p.container_port for p in obj.spec.ports]
    return {
        net: [{"addr": ip, "version": 4, "port": None, "subnet_id": None, "ports": ports}]
        for net, ip in obj.status.ips.items()
    }


def _memory(obj: Container) -> str | None:
    memory = obj.spec.resources.memory
    return f"{memory // MIB}M" if memory is not None else None


def _command(obj: Container) -> list[str]:
    return list(obj.spec.args or [])


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "") if value is not None else None


def _registry_id(obj: Container, registry_ids: Mapping[tuple[str, str], str]) -> str | None:
    refs = obj.spec.image_pull_secrets
    return registry_ids.get((obj.project or "", refs[0].name)) if refs else None


def container(
    obj: Container, request: Request, registry_ids: Mapping[tuple[str, str], str] | None = None
) -> dict[str, Any]:
    """`registry_ids`: (project, PullSecret name) -> uid, for `registry_id` (the first of
    `spec.imagePullSecrets`; None when it is not there)."""
    uid = obj.metadata.uid or ""
    href = f"{v1_url(request)}/containers/{uid}"
    spec, status = obj.spec, obj.status
    return {
        "uuid": uid,
        "name": zun_name(obj),
        "image": spec.image,
        "command": _command(obj),
        "entrypoint": obj.spec.command,
        "status": status_of(obj),
        "status_reason": status_reason(obj),
        "status_detail": status_reason(obj),
        "task_state": task_state(obj),
        "cpu": spec.resources.cpu,
        "cpu_policy": "shared",
        "memory": _memory(obj),
        "disk": 0,
        "environment": {e.name: e.value for e in spec.env},
        "workdir": spec.workdir,
        "labels": dict(spec.labels),
        "addresses": _addresses(obj),
        "ports": [p.container_port for p in spec.ports],
        "exposed_ports": {f"{p.container_port}/{p.protocol.lower()}": {} for p in spec.ports},
        "published_ports": [p.model_dump(mode="json", by_alias=True) for p in status.ports],
        "hostname": spec.hostname,
        "host": status.host,
        "restart_policy": {"Name": RESTART[spec.restart_policy], "MaximumRetryCount": "0"},
        "image_pull_policy": effective_policy(spec.image, spec.image_pull_policy).value.lower(),
        "image_driver": "docker",
        "security_groups": [],
        "auto_remove": False,
        "auto_heal": False,
        "privileged": False,
        "interactive": False,
        "tty": False,
        "runtime": spec.runtime or "runc",
        "healthcheck": {},
        "registry_id": _registry_id(obj, registry_ids or {}),
        "project_id": obj.project,
        "user_id": None,
        "created_at": _time(obj.metadata.creation_timestamp),
        "updated_at": None,
        "started_at": _time(status.started_at),
        "links": [{"href": href, "rel": "self"}, {"href": href, "rel": "bookmark"}],
    }


def stats(obj: Container, usage: ContainerUsage) -> dict[str, Any]:
    """Zun's stats: memory in MiB, I/O as "read/written" and "received/sent" bytes."""
    limit = usage.memory_limit
    return {
        "CONTAINER": zun_name(obj),
        "CPU %": round(usage.cpu_percent, 2),
        "MEM USAGE(MiB)": round(usage.memory_bytes / MIB, 2),
        "MEM LIMIT(MiB)": round(limit / MIB, 2),
        "MEM %": round(usage.memory_bytes / limit * 100, 2) if limit else 0.0,
        "BLOCK I/O(B)": f"{usage.block_read}/{usage.block_write}",
        "NET I/O(B)": f"{usage.net_rx}/{usage.net_tx}",
    }
