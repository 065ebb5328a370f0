"""What a Swarm service's tasks say, as an `AppObservation`.

A task is ready when Swarm says `running` (with a healthcheck it only says so once the check
passes) and available once it has been running for minReadySeconds. A rollout toward the
asked revision failed when Swarm paused the update (failure_action=pause: a new task failed
or turned unhealthy) or when it has been updating longer than progressDeadlineSeconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from zun_controller.drivers.orchestrators.base import AppObservation
from zun_controller.drivers.orchestrators.swarm_spec import LABEL_REVISION, replicas_of
from zun_controller.models.application import Application


def _time(text: str | None) -> datetime | None:
    if not text or text.startswith("0001-"):
        return None
    head, _, _rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC)


def addresses(nodes: list[dict[str, Any]]) -> dict[str, str]:
    return {n["ID"]: (n.get("Status") or {}).get("Addr", "") for n in nodes}


def _ready_since(task: dict[str, Any]) -> datetime | None:
    status = task.get("Status") or {}
    return _time(status.get("Timestamp")) if status.get("State") == "running" else None


def _endpoints(tasks: list[dict[str, Any]], addresses: dict[str, str]) -> tuple[str, ...]:
    """One address per task and target port (an engine with IPv6 on publishes each port twice,
    on 0.0.0.0 and on ::, with different host ports; the first is the IPv4 one)."""
    out = set()
    for task in tasks:
        seen: set[int] = set()
        for port in ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []:
            if port.get("PublishedPort") and port.get("TargetPort") not in seen:
                seen.add(port.get("TargetPort"))
                address = addresses.get(task.get("NodeID", ""), "") or "127.0.0.1"
                out.add(f"{address}:{port['PublishedPort']}")
    return tuple(sorted(out))


def _failure(app: Application, service: dict[str, Any], revision: str) -> str | None:
    if service["Spec"].get("Labels", {}).get(LABEL_REVISION) != revision:
        return None
    update = service.get("UpdateStatus") or {}
    state, message = update.get("State"), update.get("Message", "")
    if state == "paused":
        return f"Unhealthy: {message or 'Swarm paused the update: a new task failed'}"
    started = _time(update.get("StartedAt"))
    deadline = app.spec.update_strategy.progress_deadline_seconds
    late = started is not None and (datetime.now(UTC) - started).total_seconds() > deadline
    if state == "updating" and late:
        return f"ProgressDeadlineExceeded: not updated within {deadline} s"
    return None


def observation(
    app: Application,
    service: dict[str, Any],
    tasks: list[dict[str, Any]],
    addresses: dict[str, str],
    revision: str,
) -> AppObservation:
    now = datetime.now(UTC)
    min_ready = app.spec.update_strategy.min_ready_seconds
    ready = [t for t in tasks if _ready_since(t) is not None]
    updated = [
        t
        for t in tasks
        if ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels", {}).get(LABEL_REVISION)
        == revision
    ]
    available = [t for t in ready if (now - _ready_since(t)).total_seconds() >= min_ready]  # type: ignore[operator]
    desired = replicas_of(service["Spec"]) or 0
    update_state = (service.get("UpdateStatus") or {}).get("State")
    return AppObservation(
        exists=True,
        replicas=len(tasks),
        ready=len(ready),
        updated=len([t for t in updated if t in ready]),
        available=len(available),
        revision=service["Spec"].get("Labels", {}).get(LABEL_REVISION),
        endpoints=_endpoints(tasks, addresses),
        progressing=update_state == "updating" or len(updated) < desired,
        failed=_failure(app, service, revision),
        message=f"{len(ready)}/{desired} tasks running",
    )
