"""GitRepository reconciler: fetch the branch, validate every manifest, apply, prune, report.

Each interval it applies the manifests again, so a hand edit of a record it owns is put back
(counted in status.driftCorrected). A commit with an invalid manifest applies nothing and says
which file and field; the records of the last good commit stay as they are. A URL the
admin's `GitPolicy` does not allow is fetched never (condition reason `URLNotAllowed`), and
manifests over its size limits apply nothing (`TooLarge`); a failed fetch says so without git's
text (`FetchFailed`).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.errors import InvalidError, NotFoundError, PermanentError, TransientError
from zun_controller.gitops.git import Mirror
from zun_controller.gitops.manifests import APPLY_SET, load_records
from zun_controller.gitops.policy import GitPolicy
from zun_controller.models.base import Resource, Scope
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.registry import kinds
from zun_controller.store.records import RecordStore

log = logging.getLogger(__name__)
FINALIZER = "zun.openstack.org/gitops"
#: characters of a failure's message kept in the Ready condition
MESSAGE_CHARS = 4000


class GitRepositoryReconciler:
    def __init__(
        self,
        repos: Records[GitRepository],
        store: RecordStore,
        cache: Path,
        policy: GitPolicy | None = None,
    ) -> None:
        self.repos, self.store, self.cache = repos, store, cache
        self.policy = policy or GitPolicy()

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
            self._failed(repo, "InvalidManifest", str(exc))
        except PermanentError as exc:
            self._failed(repo, exc.reason, exc.message)
        except TransientError as exc:
            self._failed(repo, "FetchFailed", str(exc))
        repo.status.observed_generation = repo.metadata.generation
        await self.repos.write_status(repo, before)
        return Result(requeue_after=repo.spec.interval_seconds)

    @staticmethod
    def _failed(repo: GitRepository, reason: str, message: str) -> None:
        repo.status.phase = "Failed"
        cut = message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 3] + "..."
        repo.status.set_condition("Ready", False, reason, cut)

    async def _sync(self, repo: GitRepository) -> None:
        mirror = Mirror(self.cache, repo.spec.url, self.policy)
        commit = await mirror.fetch(repo.spec.branch)
        repo.status.last_fetched_commit = commit
        files = await mirror.manifests(commit, repo.spec.path)
        desired = load_records(files, repo.project or "", repo.name)
        changed = [r.key for r in desired if await self._apply(r)]
        if commit == repo.status.last_applied_commit:
            repo.status.drift_corrected += len(changed)
        pruned = await self._prune(repo, {r.key for r in desired}) if repo.spec.prune else []
        repo.status.last_applied_commit = commit
        repo.status.applied = sorted(r.key for r in desired)
        repo.status.pruned = pruned
        repo.status.phase = "Ready"
        message = f"{len(desired)} records at {commit[:12]}"
        repo.status.set_condition("Ready", True, "Applied", message)

    async def _apply(self, desired: Resource) -> bool:
        """Create or correct one record; whether anything was written."""
        try:
            current = await self.store.get(type(desired), desired.name, desired.project)
        except NotFoundError:
            await self.store.create(desired)
            return True
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
