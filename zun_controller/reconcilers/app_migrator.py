"""`Migrator`: one reconcile's step of an Application's move between Clusters (the states
are app_migration's). It runs after the serving side was converged and never lets the new
side's trouble reach the serving side: a new side that cannot be made or does not become
ready is a failed attempt (removed, tried again later), never an error of the reconcile.

Every decision is written to status (compare-and-swap) before the engines are touched: the
migration record before the new side is applied, the cut over before the old side is
removed, so a controller that stops at any point finds both sides named on its next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from zun_controller.drivers.orchestrators.base import AppObservation, Orchestrator
from zun_controller.engine.client import Records
from zun_controller.errors import AlreadyExistsError, PermanentError, TransientError
from zun_controller.models.application import Application, Cluster, Migration
from zun_controller.reconcilers import app_migration as states
from zun_controller.reconcilers import app_status
from zun_controller.reconcilers.app_events import ApplicationEvents
from zun_controller.reconcilers.app_revision import Target
from zun_controller.reconcilers.waiting import Waiting

log = logging.getLogger(__name__)

Resolve = Callable[[Application, str], Awaitable[Orchestrator]]
RemoveSide = Callable[[Application, str], Awaitable[bool]]
Write = Callable[[Application], Awaitable[None]]
#: how often a move under way is looked at
POLL = 1.0
#: refused at once, not waited out: the target Cluster will not take the app as it is
REFUSALS = {"ClusterNotAllowed"}


def _now() -> datetime:
    return datetime.now(UTC)


class Migrator:
    def __init__(
        self,
        resolve: Resolve,
        remove: RemoveSide,
        write: Write,
        apps: Records[Application],
        clusters: Records[Cluster],
        *,
        events: ApplicationEvents,
    ) -> None:
        self.resolve, self.remove, self.write = resolve, remove, write
        self.apps, self.clusters, self.events = apps, clusters, events
        self.now = _now

    async def step(self, app: Application, chosen: Target) -> float | None:
        """Move the app one step toward spec.cluster; seconds until the next look (None: no
        move is under way)."""
        now = self.now()
        gone = states.abandoned(app)
        if gone is not None:
            return await self._drop_abandoned(app, gone)
        old = states.old_side(app)
        if old is not None:
            return await self._remove_old(app, old, now)
        if app.spec.cluster == states.serving(app):
            app.status.migration = None
            return None
        prior = app.status.migration.model_copy(deep=True) if app.status.migration else None
        mig = states.begin(app, now)
        if not states.retry_due(app, mig, now):
            await self._clear_new_side(app, mig)
            return POLL if mig.to_applied else _until(mig.retry_at, now)
        if mig.failure is not None:
            states.retry(mig, now)
        if mig != prior:
            await self.write(app)  # the attempt is known (with both sides) before it runs
        return await self._advance(app, mig, chosen, now)

    async def _drop_abandoned(self, app: Application, name: str) -> float:
        if await self._removed(app, name):
            app.status.migration = None
        return POLL

    async def _remove_old(self, app: Application, name: str, now: datetime) -> float | None:
        mig = app.status.migration
        assert mig is not None
        if not states.drained(mig, now):
            return states.DRAIN
        if await self._removed(app, name):
            log.info("migration done", extra={"key": app.key, "from": name, "to": mig.to_cluster})
            self.events.migrated(app, name, mig.to_cluster)
            app.status.migration = None
            return None
        return POLL

    async def _removed(self, app: Application, name: str) -> bool:
        """Whether nothing of the app is left on `name` (asked to remove it); an engine that
        does not answer keeps it pending (the app shows it in `Migrating`)."""
        try:
            return await self.remove(app, name)
        except Waiting as wait:
            log.info("side not removed yet", extra={"key": app.key, "cluster": name, "why": wait})
            return False

    async def _clear_new_side(self, app: Application, mig: Migration) -> None:
        if mig.to_applied and await self._removed(app, mig.to_cluster):
            mig.to_applied = False

    async def _advance(
        self, app: Application, mig: Migration, chosen: Target, now: datetime
    ) -> float | None:
        obs, why = await self._attempt(app, mig, chosen, now)
        if obs is not None:
            mig.ready_replicas, mig.endpoints = obs.ready, list(obs.endpoints)
            why = obs.failed or why
            if why is None and obs.serving and app_status.complete(app, obs):
                states.cut_over(app, mig, now)
                app_status.fill(app, obs, chosen.revision)
                log.info("migration cut over", extra={"key": app.key, "to": mig.to_cluster})
                return states.DRAIN
        if why is None and states.deadline_passed(app, mig, now):
            limit = app.spec.update_strategy.progress_deadline_seconds
            ready = obs.ready if obs else 0
            why = f"ProgressDeadlineExceeded: {ready}/{app.spec.replicas} ready in {limit} s"
        if why is not None:
            return await self._failed(app, mig, why, now)
        return POLL

    async def _attempt(
        self, app: Application, mig: Migration, chosen: Target, now: datetime
    ) -> tuple[AppObservation | None, str | None]:
        """The new side applied and observed, or why that failed for good (None: not yet)."""
        try:
            return await self._apply_new_side(app, mig, chosen), None
        except Waiting as wait:
            why = f"{wait.reason}: {wait.message}"
            given_up = wait.reason in REFUSALS or states.deadline_passed(app, mig, now)
            return None, why if given_up else None
        except (PermanentError, AlreadyExistsError) as exc:
            return None, _why(exc)
        except TransientError as exc:
            pending = f"EngineUnavailable: {exc}"
            return None, pending if states.deadline_passed(app, mig, now) else None

    async def _apply_new_side(
        self, app: Application, mig: Migration, chosen: Target
    ) -> AppObservation:
        orchestrator = await self.resolve(app, mig.to_cluster)
        self._refuse_same_objects(mig)
        if not mig.to_applied:
            mig.to_applied = True
            await self.write(app)  # known before anything is sent to toCluster
        self.apps.check_leading(f"migrate {app.key}")
        await orchestrator.apply(app, chosen.template, chosen.revision)
        return await orchestrator.observe(app, chosen.revision)

    def _refuse_same_objects(self, mig: Migration) -> None:
        """No move between Clusters that would hold the app as the same objects: one side
        could not be told from the other, and removing the old one would remove the app."""
        source = self.clusters.get_by_name(mig.from_cluster)
        target = self.clusters.get_by_name(mig.to_cluster)
        why = states.shared_objects(source, target) if source and target else None
        if why is not None:
            raise PermanentError("Unsupported", f"no move between these Clusters: {why}")

    async def _failed(self, app: Application, mig: Migration, why: str, now: datetime) -> float:
        states.fail(app, mig, why, now)
        self.events.migration_failed(app, mig.from_cluster, mig.to_cluster, why)
        log.warning("migration failed", extra={"key": app.key, "to": mig.to_cluster, "why": why})
        await self._clear_new_side(app, mig)
        return POLL if mig.to_applied else _until(mig.retry_at, now)


def _why(exc: PermanentError | AlreadyExistsError) -> str:
    if isinstance(exc, PermanentError):
        return f"{exc.reason}: {exc.message}"
    return f"NameConflict: {exc}"


def _until(when: datetime | None, now: datetime) -> float:
    return max(POLL, (when - now).total_seconds()) if when else POLL
