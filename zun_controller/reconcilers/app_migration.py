"""Moving an Application between Clusters, as pure functions on its status.

The Cluster whose side serves the Application is `status.cluster` during a move; settled,
it is the `Migrating` condition's message `on Cluster <name>` (reason `Settled`), so a
settled record carries no field the release before this one rejects. When `spec.cluster`
names another, the move is a migration, recorded in `status.migration` and
`status.cluster` (written before the new side is made, so a restarted controller knows both
sides):

1. **Progressing**: the old side keeps running (and rolling, scaling) on `fromCluster`; the
   new side is applied on `toCluster` with the same revision. Condition `Migrating` True,
   reason `Migrating`.
2. **Cut over**: once every replica of the new side is ready, `status.cluster` names
   `toCluster` (its endpoints become `status.endpoints`); the old side is removed `DRAIN`
   seconds later (clients that follow `status.endpoints` move meanwhile), reason
   `RemovingOldSide`; once it is gone the migration record goes (`Migrating` False,
   `Settled`).
3. **Failed**: the new side not ready within progressDeadlineSeconds, failing (e.g.
   `ErrImagePull`), refused (`NameConflict`, `Unsupported`, `ClusterNotAllowed`) or its
   Cluster not ready for as long: the new side is removed, the old one keeps serving, and
   `Migrating` is False with reason `MigrationFailed` naming why. The spec still names the
   new Cluster, so the move is tried again after a backoff (`RETRY_BASE` doubling up to
   `RETRY_MAX`), or at once when the spec changes.

`spec.cluster` changed again during a move: a new side on a Cluster no longer named is
removed first (the move is abandoned), then a move from the serving Cluster starts afresh
(none when the spec names the serving Cluster again).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from zun_controller.models.application import Application, Cluster, ClusterType, Migration

MIGRATING, SETTLED, SETTLED_ON = "Migrating", "Settled", "on Cluster "
#: seconds between the cut over and the removal of the old side
DRAIN = 3.0
RETRY_BASE = 30.0
RETRY_MAX = 300.0


def serving(app: Application) -> str:
    """The Cluster whose side serves the app: `status.cluster` during a move, the `Migrating`
    condition's `on Cluster <name>` when settled; a record not reconciled yet: spec.cluster."""
    if app.status.cluster:
        return app.status.cluster
    cond = app.status.condition(MIGRATING)
    if cond is not None and cond.reason == SETTLED and cond.message.startswith(SETTLED_ON):
        return cond.message.removeprefix(SETTLED_ON)
    return app.spec.cluster


def record(app: Application) -> None:
    """Say in status where the app is: during a move `status.cluster` and the migration;
    settled, only the `Migrating` condition (`status.cluster` left out at its default, so a
    settled record has no field the release before this one does not know)."""
    status, reason, message = condition(app)
    app.status.cluster = serving(app) if app.status.migration is not None else None
    app.status.set_condition(MIGRATING, status, reason, message)


def sides(app: Application) -> list[str]:
    """Every Cluster that may hold something of the app (removed on delete; held in use)."""
    names = [serving(app)]
    mig = app.status.migration
    if mig is not None:
        names.append(mig.from_cluster)
        if mig.to_applied:
            names.append(mig.to_cluster)
    return list(dict.fromkeys(names))


def abandoned(app: Application) -> str | None:
    """A new side's Cluster the spec no longer names, whose side must go first."""
    mig = app.status.migration
    if mig is None or mig.to_cluster in (app.spec.cluster, serving(app)):
        return None
    return mig.to_cluster if mig.to_applied else None


def old_side(app: Application) -> str | None:
    """The Cluster to remove the old side from, after the cut over."""
    mig = app.status.migration
    if mig is None or mig.to_cluster != serving(app):
        return None
    return mig.from_cluster


def shared_objects(source: Cluster, target: Cluster) -> str | None:
    """Why two Clusters would hold an app as the same objects (None: they would not)."""
    a, b = source.spec, target.spec
    if a.type is not b.type:
        return None
    if a.type is ClusterType.DOCKER:
        return "docker Clusters hold an app's replicas as the same Container records"
    if a.type is ClusterType.SWARM and a.endpoint == b.endpoint:
        return f"both are the Swarm at {a.endpoint}"
    if a.type is ClusterType.KUBERNETES and a.kubeconfig_secret == b.kubeconfig_secret:
        secret = a.kubeconfig_secret.name if a.kubeconfig_secret else ""
        return f"both reach Kubernetes through Secret {secret}"
    return None


def begin(app: Application, now: datetime) -> Migration:
    """The migration toward spec.cluster, recorded (a fresh one when none runs toward it)."""
    mig = app.status.migration
    if mig is None or mig.to_cluster != app.spec.cluster:
        app.status.cluster = serving(app)
        mig = Migration(from_cluster=serving(app), to_cluster=app.spec.cluster, started=now)
        app.status.migration = mig
    return mig


def retry_due(app: Application, mig: Migration, now: datetime) -> bool:
    """Whether to try the new side now: no failure waits, its time came, or the spec moved."""
    if mig.failure is None:
        return True
    if app.metadata.generation != mig.failed_generation:
        return True
    return mig.retry_at is None or now >= mig.retry_at


def retry(mig: Migration, now: datetime) -> None:
    """A new attempt begins: the deadline counts from now."""
    mig.failure, mig.retry_at, mig.started = None, None, now


def deadline_passed(app: Application, mig: Migration, now: datetime) -> bool:
    limit = app.spec.update_strategy.progress_deadline_seconds
    return now - mig.started > timedelta(seconds=limit)


def fail(app: Application, mig: Migration, why: str, now: datetime) -> None:
    """Record a failed attempt (`why` is "<Reason>: <message>") and when to try again."""
    if mig.failure is None:
        mig.failures += 1
    mig.failure = why
    mig.failed_generation = app.metadata.generation
    delay = min(RETRY_MAX, RETRY_BASE * 2 ** (mig.failures - 1))
    mig.retry_at = (now + timedelta(seconds=delay)).replace(microsecond=0)
    mig.ready_replicas, mig.endpoints = 0, []


def cut_over(app: Application, mig: Migration, now: datetime) -> None:
    """The new side serves: status.cluster names it; the old side goes after `DRAIN`."""
    app.status.cluster = mig.to_cluster
    mig.started = now


def drained(mig: Migration, now: datetime) -> bool:
    return now - mig.started >= timedelta(seconds=DRAIN)


def condition(app: Application) -> tuple[bool, str, str]:
    """The `Migrating` condition: (status, reason, message)."""
    mig = app.status.migration
    if mig is None:
        return False, SETTLED, f"{SETTLED_ON}{serving(app)}"
    move = f"from Cluster {mig.from_cluster} to {mig.to_cluster}"
    if mig.failure is not None:
        when = mig.retry_at.isoformat() if mig.retry_at else "now"
        return (
            False,
            "MigrationFailed",
            f"{move} failed ({mig.failure}); {serving(app)} keeps serving; "
            f"attempt {mig.failures + 1} at {when}",
        )
    if mig.to_cluster == serving(app):
        return (
            True,
            "RemovingOldSide",
            f"{move}: {mig.to_cluster} serves; removing from {mig.from_cluster}",
        )
    want = app.spec.replicas
    return True, "Migrating", f"{move}: {mig.ready_replicas}/{want} ready on {mig.to_cluster}"
