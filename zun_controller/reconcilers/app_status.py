"""An Application's status from what its orchestrator observed: replica counts, endpoints,
phase and the conditions Available, Progressing and RolledBack (with reasons).

Orchestrators give a failed rollout as `"<Reason>: <message>"` (e.g. `Unhealthy: ...`,
`ProgressDeadlineExceeded: ...`); the reason becomes the conditions' reason.
"""

from __future__ import annotations

from zun_controller.drivers.orchestrators.base import AppObservation
from zun_controller.drivers.orchestrators.rollout import min_available
from zun_controller.models.application import Application


def split_failure(failed: str) -> tuple[str, str]:
    reason, sep, message = failed.partition(": ")
    if not sep or not reason.isalnum():
        return "RolloutFailed", failed
    return reason, message


def rolled_out(app: Application, revision: str) -> bool:
    """Whether the rollout to `revision` completed (a failure after that is no failed rollout:
    it is reported, not rolled back)."""
    cond = app.status.condition("Progressing")
    return (
        cond is not None
        and cond.reason == "RevisionAvailable"
        and cond.message == f"revision {revision}"
    )


def complete(app: Application, obs: AppObservation) -> bool:
    want = app.spec.replicas
    return (
        obs.exists
        and obs.replicas == want
        and obs.updated == want
        and obs.ready == want
        and not obs.progressing
    )


def fill(app: Application, obs: AppObservation, revision: str) -> None:
    status, want = app.status, app.spec.replicas
    status.replicas = obs.replicas
    status.ready_replicas = obs.ready
    status.updated_replicas = obs.updated
    status.available_replicas = obs.available
    status.endpoints = list(obs.endpoints)
    status.observed_generation = app.metadata.generation
    floor = min_available(app.spec.update_strategy, want)
    available = obs.exists and obs.available >= floor
    status.set_condition(
        "Available",
        available,
        "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
        f"{obs.available}/{want} available (at least {floor} wanted)",
    )
    done = complete(app, obs)
    if obs.failed:
        reason, message = split_failure(obs.failed)
        status.set_condition("Progressing", False, reason, f"revision {revision}: {message}")
    elif done:
        status.set_condition("Progressing", True, "RevisionAvailable", f"revision {revision}")
    else:
        message = f"revision {revision}: {obs.message or f'{obs.updated}/{want} updated'}"
        status.set_condition("Progressing", True, "RollingUpdate", message)
    if status.failed_revision is None:
        status.set_condition("RolledBack", False, "NoFailedRevision")
    status.phase = "Ready" if available and done else ("Failed" if obs.failed else "Progressing")
