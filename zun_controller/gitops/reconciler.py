"""GitRepository reconciler: fetch the branch, validate every manifest, apply, prune, report.

Each interval it applies the manifests again, so a hand edit of a record it owns is put back
(counted in status.driftCorrected). A commit with an invalid manifest applies nothing and says
which file and field; the records of the last good commit stay as they are.

It never takes over a record it did not make (models/ownership.py): a manifest naming a record
another writer owns (made by hand, by another repository, an apply-set, the bridge, or an
Application) leaves that record as it is, and the repository reports it — condition `Ready`
False with reason `OwnershipConflict` naming each record and its owner, and a Warning Event
`OwnershipConflict` — until the manifest carries `zun.openstack.org/adopt: "true"` or the
record goes. The other manifests are applied all the same. Prune deletes only records labelled
as this repository's.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from zun_controller.engine.client import Records
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.reconciler import Result
from zun_controller.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from zun_controller.gitops.git import Mirror
from zun_controller.gitops.manifests import APPLY_SET, load_records
from zun_controller.models.base import Resource, Scope
from zun_controller.models.event import EventType
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.ownership import adopts, conflict, gitops, owner_of
from zun_controller.models.registry import kinds
from zun_controller.store.records import RecordStore

log = logging.getLogger(__name__)
FINALIZER = "zun.openstack.org/gitops"
CONFLICT = "OwnershipConflict"


class OwnedElsewhere(ConflictError):
    """A manifest names a record that another writer owns; the message names the owner."""


class GitRepositoryReconciler:
    def __init__(
        self,
        repos: Records[GitRepository],
        store: RecordStore,
        cache: Path,
        recorder: EventRecorder | None = None,
    ) -> None:
        self.repos, self.store, self.cache = repos, store, cache
        self.recorder = recorder

    async def reconcile(self, key: str) -> Result:
        repo = self.repos.get(key)
        if repo is None:
            return Result()
        if repo.metadata.deletion_timestamp:
            return await self._finalize(repo)
        if FINALIZER not in repo.metadata.finalizers:
            repo.metadata.finalizers.append(FINALIZER)
            repo = await self.repos.update(repo)
        before = repo.status.model_copy(deep=True)
        try:
            await self._sync(repo)
        except InvalidError as exc:
            repo.status.phase = "Failed"
            repo.status.set_condition("Ready", False, "InvalidManifest", str(exc))
        except (TransientError, PermanentError) as exc:
            repo.status.phase = "Failed"
            repo.status.set_condition("Ready", False, "FetchFailed", str(exc))
        repo.status.observed_generation = repo.metadata.generation
        await self.repos.write_status(repo, before)
        return Result(requeue_after=repo.spec.interval_seconds)

    async def _sync(self, repo: GitRepository) -> None:
        mirror = Mirror(self.cache, repo.spec.url)
        commit = await mirror.fetch(repo.spec.branch)
        repo.status.last_fetched_commit = commit
        files = await mirror.manifests(commit, repo.spec.path)
        desired = load_records(files, repo.project or "", repo.name)
        changed, conflicts = await self._apply_all(repo, desired)
        if commit == repo.status.last_applied_commit:
            repo.status.drift_corrected += len(changed)
        pruned = await self._prune(repo, {r.key for r in desired}) if repo.spec.prune else []
        repo.status.last_applied_commit = commit
        repo.status.applied = sorted(r.key for r in desired if r.key not in conflicts)
        repo.status.pruned = pruned
        if conflicts:
            self._report_conflicts(repo, list(conflicts.values()))
            return
        repo.status.phase = "Ready"
        message = f"{len(desired)} records at {commit[:12]}"
        repo.status.set_condition("Ready", True, "Applied", message)

    async def _apply_all(
        self, repo: GitRepository, desired: list[Resource]
    ) -> tuple[list[str], dict[str, str]]:
        """The keys written, and the refused ones with why."""
        changed, conflicts = [], {}
        for record in desired:
            try:
                if await self._apply(repo, record):
                    changed.append(record.key)
            except OwnedElsewhere as exc:
                conflicts[record.key] = str(exc)
        return changed, conflicts

    def _report_conflicts(self, repo: GitRepository, messages: list[str]) -> None:
        repo.status.phase = "Conflict"
        repo.status.set_condition("Ready", False, CONFLICT, "; ".join(sorted(messages)))
        if self.recorder is not None:
            for message in messages:
                self.recorder.record(repo, EventType.WARNING, CONFLICT, message)

    async def _apply(self, repo: GitRepository, desired: Resource) -> bool:
        """Create or correct one record; whether anything was written. `OwnedElsewhere` when
        another writer owns it and the manifest does not adopt it."""
        try:
            current = await self.store.get(type(desired), desired.name, desired.project)
        except NotFoundError:
            await self.store.create(desired)
            return True
        owner = owner_of(current.metadata)
        if owner != gitops(repo.name, repo.project) and not adopts(desired.metadata.annotations):
            raise OwnedElsewhere(conflict(desired.key, owner))
        meta = current.metadata
        wanted = (desired.spec, desired.metadata.labels, desired.metadata.annotations)
        if (current.spec, meta.labels, meta.annotations) == wanted or meta.deletion_timestamp:
            return False
        current.spec = desired.spec
        meta.labels, meta.annotations = desired.metadata.labels, desired.metadata.annotations
        await self.store.update(current)
        return True

    async def _owned(self, repo: GitRepository) -> list[Resource]:
        found: list[Resource] = []
        for cls in kinds():
            if cls.KIND.scope is Scope.PROJECT:
                page = await self.store.list(cls, repo.project, selector=f"{APPLY_SET}={repo.name}")
                found += page.items
        return found

    async def _prune(self, repo: GitRepository, keep: set[str]) -> list[str]:
        gone = []
        for obj in await self._owned(repo):
            if obj.key not in keep and not obj.metadata.deletion_timestamp:
                await self.store.delete(type(obj), obj.name, obj.project)
                gone.append(obj.key)
        return sorted(gone)

    async def _finalize(self, repo: GitRepository) -> Result:
        if FINALIZER not in repo.metadata.finalizers:
            return Result()
        if repo.spec.prune:
            await self._prune(repo, set())
        repo.metadata.finalizers = [f for f in repo.metadata.finalizers if f != FINALIZER]
        with contextlib.suppress(NotFoundError):
            await self.repos.update(repo)
        return Result()
