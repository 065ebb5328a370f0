"""What the Application reconciler tells the world: Events (through the `EventRecorder`:
`RolledBack`, `DriftCorrected`, `NameConflict`, `MigrationFailed`, `Migrated`) and
drift corrections (`zun_drift_corrections_total{kind="Application"}`).

A correction is drift when the record had converged on the revision it runs and not changed
since (generation == status.observedGeneration, Progressing says RevisionAvailable for it), yet
the orchestrator's apply had to change the engine: a Swarm service scaled or edited by hand, a
Kubernetes Deployment or Service edited or deleted, the balancer record of a docker Cluster
edited or deleted. The engine's own work (Swarm replacing a task, a ReplicaSet a Pod, a docker
Cluster's app a replica record) is not counted here; a replica's container that drifted is the
Container's drift."""

from __future__ import annotations

from zun_controller.engine.events import EventRecorder
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application
from zun_controller.models.event import EventType
from zun_controller.reconcilers import app_status

DRIFT_ACTIONS = ("reapplied",)


def settled(app: Application, revision: str) -> bool:
    """Whether `app` had converged on `revision` and its spec has not changed since."""
    return app.metadata.generation == app.status.observed_generation and app_status.rolled_out(
        app, revision
    )


class ApplicationEvents:
    def __init__(self, recorder: EventRecorder | None, metrics: Metrics | None) -> None:
        self._recorder, self._metrics = recorder, metrics
        if metrics is not None:
            metrics.init_drift("Application", DRIFT_ACTIONS)

    def _record(
        self, app: Application, reason: str, message: str, type_: EventType = EventType.WARNING
    ) -> None:
        if self._recorder is not None:
            self._recorder.record(app, type_, reason, message)

    def migrated(self, app: Application, source: str, to: str) -> None:
        """A move between Clusters is done: the old side is gone (Normal `Migrated`)."""
        self._record(app, "Migrated", f"moved from Cluster {source} to {to}", EventType.NORMAL)

    def migration_failed(self, app: Application, source: str, to: str, why: str) -> None:
        """An attempt to move failed; the old side serves on (Warning `MigrationFailed`)."""
        message = f"from Cluster {source} to {to} failed ({why}); {source} keeps serving"
        self._record(app, "MigrationFailed", message)

    def rolled_back(self, app: Application, failed: str, back: str, why: str) -> None:
        reason, message = app_status.split_failure(why)
        self._record(
            app,
            "RolledBack",
            f"revision {failed} failed ({reason}: {message}); rolled back to revision {back}",
        )

    def applied(self, app: Application, revision: str, *, changed: bool, was_settled: bool) -> None:
        """After an apply: drift when it changed the engine under a settled record."""
        if not (changed and was_settled):
            return
        if self._metrics is not None:
            self._metrics.drift_corrections.labels("Application", "reapplied").inc()
        self._record(
            app, "DriftCorrected", f"the engine differed from revision {revision}; applied it again"
        )

    def name_conflict(self, app: Application, why: str) -> None:
        """A name the Application needs is another owner's record (Warning `NameConflict`)."""
        self._record(app, "NameConflict", why)
