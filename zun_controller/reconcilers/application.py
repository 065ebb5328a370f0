"""Application reconciler, engine-independent: whatever the Cluster's type, it picks the
revision to run (app_revision), has the Cluster's orchestrator apply and observe it, rolls
back by itself when the observation says the new revision failed (condition `RolledBack` and a
Warning Event `RolledBack`), and writes status. An apply that had to change the engine under a
settled record is drift (app_events).

Every decision about revisions (current, previous, failed, history) is written to status
*before* the orchestrator acts on it: the write is a compare-and-swap, so a reconcile that
read a stale cache fails there instead of applying an old revision again.

Deleting an Application asks its orchestrator to remove everything it made, then drops the
finalizer. While that cannot be done — its Cluster record is gone, the Cluster's engine does
not answer, a Secret it needs is missing — the Application is not let go: it stays, phase
`Terminating` with condition `Terminating` (reason `ClusterNotFound`, `EngineUnavailable`,
`SecretNotFound`, ...) naming the Cluster, and cleans up when the engine answers again.
`zunctl delete --force` is the way out: it removes the finalizer and leaves what is outside.
A delete with `propagationPolicy=Orphan` waits until the garbage collector (engine/gc.py) has
cut the owned records loose (the `orphan` finalizer is gone): the orchestrator then finds
nothing of its own to remove; otherwise the collector deletes the records it owned.
"""

from __future__ import annotations

import contextlib
import logging

from zun_controller.admission.admit import cluster_refusal
from zun_controller.drivers.orchestrators.base import AppObservation, Orchestrator
from zun_controller.engine.client import Records
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.reconciler import Result, TerminalError
from zun_controller.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application, Cluster, ClusterType
from zun_controller.models.deletion import ORPHAN
from zun_controller.reconcilers import app_migration, app_status
from zun_controller.reconcilers.app_events import ApplicationEvents, settled
from zun_controller.reconcilers.app_migration import serving
from zun_controller.reconcilers.app_migrator import Migrator
from zun_controller.reconcilers.app_revision import Target, can_roll_back, roll_back, target
from zun_controller.reconcilers.orchestrators import OrchestratorPool, SecretMissing
from zun_controller.reconcilers.waiting import Waiting

log = logging.getLogger(__name__)
FINALIZER = "zun.openstack.org/application"
#: how often a name taken by another owner's record is looked at again
NAME_RECHECK = 5.0


class ApplicationReconciler:
    def __init__(
        self,
        apps: Records[Application],
        clusters: Records[Cluster],
        pool: OrchestratorPool,
        *,
        poll_progressing: float = 1.0,
        poll_steady: float = 15.0,
        recorder: EventRecorder | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.apps = apps
        self.clusters = clusters
        self.pool = pool
        self.events = ApplicationEvents(recorder, metrics)
        self.poll_progressing = poll_progressing
        self.poll_steady = poll_steady
        self.migrations = Migrator(
            self._orchestrator, self.remove_side, self._write, apps, clusters, events=self.events
        )

    async def _write(self, app: Application) -> None:
        """Write status now (compare-and-swap), keeping `app` at its new resourceVersion."""
        written = await self.apps.write_status(app)
        app.metadata.resource_version = written.metadata.resource_version

    async def reconcile(self, key: str) -> Result:
        app = self.apps.get(key)
        if app is None:
            return Result()
        if app.metadata.deletion_timestamp:
            return await self._finalize(app)
        if FINALIZER not in app.metadata.finalizers:
            app.metadata.finalizers.append(FINALIZER)
            app = await self.apps.update(app)
        before = app.status.model_copy(deep=True)
        if app.status.condition(app_migration.MIGRATING) is None:  # where the spec says
            app_migration.record(app)
            await self._decide(app, before)  # known before anything is applied there
        try:
            orchestrator = await self._orchestrator(app, serving(app))
            obs, chosen = await self._converge(app, orchestrator)
        except Waiting as wait:
            app.status.set_condition("Progressing", False, wait.reason, wait.message)
            moving = await self._move_regardless(app, before)
            await self.apps.write_status(app, before)
            return Result(requeue_after=min(wait.after, moving or wait.after))
        except AlreadyExistsError as exc:
            app.status.set_condition("Progressing", False, "NameConflict", str(exc))
            await self.apps.write_status(app, before)
            self.events.name_conflict(app, str(exc))
            return Result(requeue_after=NAME_RECHECK)
        except PermanentError as exc:
            app.status.phase = "Failed"
            app.status.set_condition("Progressing", False, exc.reason, exc.message)
            await self.apps.write_status(app, before)
            raise TerminalError(str(exc)) from exc
        except TransientError as exc:
            app.status.set_condition("Available", False, "ClusterUnavailable", str(exc))
            await self._move_regardless(app, before)
            await self.apps.write_status(app, before)
            raise
        app_status.fill(app, obs, chosen.revision)
        moving = await self.migrations.step(app, chosen)
        app_migration.record(app)
        await self.apps.write_status(app, before)
        steady = app_status.complete(app, obs) or obs.failed
        if moving is not None:
            return Result(requeue_after=moving)
        return Result(requeue_after=self.poll_steady if steady else self.poll_progressing)

    async def _move_regardless(self, app: Application, before: object) -> float | None:
        """A serving side that cannot be reached does not hold up a move away from it (a
        move may be how its user rescues the app); seconds until the move's next look."""
        if app.spec.cluster == serving(app) and app.status.migration is None:
            return None
        chosen = target(app)
        await self._decide(app, before)
        moving = await self.migrations.step(app, chosen)
        app_migration.record(app)
        return moving

    async def _orchestrator(self, app: Application, name: str) -> Orchestrator:
        """The orchestrator of Cluster `name` for this app; `Waiting` while it cannot be used."""
        cluster = self.clusters.get_by_name(name)
        if cluster is None:
            raise Waiting("ClusterNotFound", f"spec.cluster: Cluster {name!r} not found")
        refusal = cluster_refusal(cluster, app.project or "")
        if refusal:
            raise Waiting("ClusterNotAllowed", f"spec.cluster: {refusal}")
        if not cluster.status.is_true("Ready"):
            raise Waiting("ClusterNotReady", f"Cluster {cluster.name} is not ready")
        try:
            return await self.pool.get(cluster)
        except SecretMissing as exc:
            raise Waiting("SecretNotFound", str(exc)) from None

    async def _decide(self, app: Application, before: object) -> None:
        """Persist revision decisions before acting on them (compare-and-swap); `app` keeps
        being the object the caller holds, at its new resourceVersion."""
        if app.status != before:
            written = await self.apps.write_status(app)
            app.metadata.resource_version = written.metadata.resource_version

    async def _converge(
        self, app: Application, orchestrator: Orchestrator
    ) -> tuple[AppObservation, Target]:
        before = app.status.model_copy(deep=True)
        chosen = target(app)
        was_settled = settled(app, chosen.revision)
        await self._decide(app, before)
        self.apps.check_leading(f"apply {app.key}")
        changed = await orchestrator.apply(app, chosen.template, chosen.revision)
        self.events.applied(app, chosen.revision, changed=changed, was_settled=was_settled)
        obs = await orchestrator.observe(app, chosen.revision)
        if (
            obs.failed
            and not chosen.held_back
            and not app_status.rolled_out(app, chosen.revision)
            and can_roll_back(app, chosen.revision)
        ):
            failed, chosen = chosen, self._roll_back(app, chosen, obs.failed)
            await self._decide(app, before)
            self.events.rolled_back(app, failed.revision, chosen.revision, obs.failed)
            self.apps.check_leading(f"roll back {app.key}")
            await orchestrator.apply(app, chosen.template, chosen.revision)
            obs = await orchestrator.observe(app, chosen.revision)
        return obs, chosen

    def _roll_back(self, app: Application, failed: Target, why: str) -> Target:
        reason, message = app_status.split_failure(why)
        back = roll_back(app, failed.revision)
        app.status.set_condition(
            "RolledBack",
            True,
            reason,
            f"revision {failed.revision} failed ({message}); running {back.revision} again",
        )
        log.warning(
            "rolling back",
            extra={
                "key": app.key,
                "failed": failed.revision,
                "to": back.revision,
                "reason": reason,
            },
        )
        return back

    async def _finalize(self, app: Application) -> Result:
        if FINALIZER not in app.metadata.finalizers:
            return Result()
        if ORPHAN in app.metadata.finalizers:  # the collector first cuts the replicas loose
            return Result(requeue_after=self.poll_progressing)
        try:
            if not await self._clean_up(app):
                return Result(requeue_after=self.poll_progressing)
        except Waiting as wait:
            before = app.status.model_copy(deep=True)
            app.status.phase = "Terminating"
            app.status.set_condition("Terminating", True, wait.reason, wait.message)
            await self.apps.write_status(app, before)
            return Result(requeue_after=wait.after)
        app.metadata.finalizers = [f for f in app.metadata.finalizers if f != FINALIZER]
        with contextlib.suppress(NotFoundError):
            await self.apps.update(app)
        return Result()

    async def _clean_up(self, app: Application) -> bool:
        """Whether nothing the Application made is left on any engine it may be on (both
        sides of a migration; a pass asked each to remove it); `Waiting` while one of them
        cannot be reached (the others are still cleaned)."""
        done, waiting = True, None
        for name in app_migration.sides(app):
            try:
                done = await self.remove_side(app, name) and done
            except Waiting as wait:
                waiting = waiting or wait
        if waiting is not None:
            raise waiting
        return done

    async def remove_side(self, app: Application, name: str) -> bool:
        """Whether nothing of the Application is left on Cluster `name` (a pass asked its
        orchestrator to remove it); `Waiting` while its engine cannot be reached."""
        out = "`zunctl delete --force` leaves what is outside"
        cluster = self.clusters.get_by_name(name)
        if cluster is None:
            raise Waiting(
                "ClusterNotFound",
                f"Cluster {name!r} is gone: what the Application made there is removed if it "
                f"comes back; {out}",
            )
        if cluster.spec.type is not ClusterType.DOCKER and not cluster.status.is_true("Ready"):
            cond = cluster.status.condition("Ready")
            why = f": {cond.message}" if cond and cond.message else ""
            raise Waiting(
                "EngineUnavailable", f"Cluster {name!r} does not answer{why}; waiting; {out}"
            )
        try:
            orchestrator = await self.pool.get(cluster)
            self.apps.check_leading(f"delete {app.key}")
            return await orchestrator.delete(app)
        except SecretMissing as exc:
            raise Waiting("SecretNotFound", f"Cluster {name!r}: {exc}; {out}") from None
        except PermanentError as exc:
            raise Waiting(exc.reason, f"Cluster {name!r}: {exc.message}; {out}") from None
        except (TransientError, TimeoutError) as exc:
            raise Waiting("EngineUnavailable", f"Cluster {name!r}: {exc}; {out}") from None
