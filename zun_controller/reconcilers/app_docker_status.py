"""What the Docker orchestrator observes: an Application's replica records as an
`AppObservation`. A replica is ready when its Container is Ready and not draining, available
once Ready for minReadySeconds. The rollout toward a revision failed when one of its replicas
is not Ready for a reason that says the revision does not work (exits, fails its healthcheck,
has no image), or when one has waited longer than progressDeadlineSeconds.

The deadline counts the time the revision had a working engine: a replica on a Host that is
not Ready does not count against it, and one on a Host that came back counts from then (the
later of the replica's creation and its Host's return). An engine restart taking minutes is
not the new revision's fault, and rolling back for it would pin the Application to its old
revision until its template changes again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from zun_controller.drivers.orchestrators.base import AppObservation
from zun_controller.models.application import Application
from zun_controller.models.container import Container

LABEL_APP = "zun.openstack.org/application"
LABEL_REVISION = "zun.openstack.org/revision"
LABEL_ROLE = "zun.openstack.org/role"
ANNOTATION_DRAIN = "zun.openstack.org/draining-since"
#: Ready False for these reasons means the revision does not work (not merely starting)
FAILING = {
    "Unhealthy", "Exited", "Restarting", "ImageNotFound", "InvalidConfig", "RuntimeNotFound",
    "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
}  # fmt: skip

#: when the engine of the named Host last became Ready; None while it is not Ready
EngineSince = Callable[[str], datetime | None]


#: a Host Ready since before anything was made
EVER = datetime.min.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def draining(obj: Container) -> bool:
    return (
        ANNOTATION_DRAIN in obj.metadata.annotations or obj.metadata.deletion_timestamp is not None
    )


def ready(obj: Container) -> bool:
    return obj.status.is_true("Ready") and not draining(obj)


def role(obj: Container) -> str | None:
    return obj.metadata.labels.get(LABEL_ROLE)


def observation(
    app: Application,
    owned: list[Container],
    revision: str,
    engine_since: EngineSince,
    balanced: Callable[[Container, list[Container]], bool] | None = None,
) -> AppObservation:
    """`balanced(lb, ready_replicas)`: whether the balancer forwards to those replicas (its
    configuration names them); without it, or without a balancer, the endpoints serve."""
    lb = next((c for c in owned if role(c) == "lb"), None)
    live = [c for c in owned if role(c) == "replica" and not draining(c)]
    up = [c for c in live if ready(c)]
    updated = [c for c in live if c.metadata.labels.get(LABEL_REVISION) == revision]
    floor = now() - timedelta(seconds=app.spec.update_strategy.min_ready_seconds)
    available = [c for c in up if _ready_since(c) <= floor]
    want = app.spec.replicas
    return AppObservation(
        exists=True,
        replicas=len(live),
        ready=len(up),
        updated=len(updated),
        available=len(available),
        revision=revision,
        endpoints=tuple(f"{p.host_ip}:{p.host_port}" for p in (lb.status.ports if lb else [])),
        progressing=len(updated) != want or len(up) < want or len(live) != want,
        failed=_failure(app, updated, engine_since),
        serving=lb is None or balanced is None or balanced(lb, up),
        message=f"{len(up)}/{want} replicas ready",
    )


def _ready_since(obj: Container) -> datetime:
    cond = obj.status.condition("Ready")
    return cond.last_transition_time if cond and cond.last_transition_time else now()


def _failure(app: Application, updated: list[Container], engine_since: EngineSince) -> str | None:
    for c in updated:
        cond = c.status.condition("Ready")
        if cond is not None and not c.status.is_true("Ready") and cond.reason in FAILING:
            return f"Unhealthy: replica {c.name}: {cond.reason} ({cond.message})"
    waiting = [_waiting_since(c, engine_since) for c in updated if not ready(c)]
    deadline = app.spec.update_strategy.progress_deadline_seconds
    oldest = min((t for t in waiting if t is not None), default=None)
    if oldest is not None and (now() - oldest).total_seconds() > deadline:
        return f"ProgressDeadlineExceeded: replicas not ready within {deadline} s"
    return None


def _waiting_since(replica: Container, engine_since: EngineSince) -> datetime | None:
    """Since when a replica that is not ready counts against the deadline (None: it does not,
    its engine is down). Not yet placed: since its creation."""
    created = replica.metadata.creation_timestamp
    if replica.status.host is None:
        return created
    back = engine_since(replica.status.host)
    if back is None:
        return None
    return max(back, created) if created is not None else back
