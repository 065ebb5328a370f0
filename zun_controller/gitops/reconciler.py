"""GitRepository reconciler: fetch the branch, validate every manifest, apply, prune, report.

Each interval it applies the manifests again, so a hand edit of a record it owns is put back
(counted in status.driftCorrected). A commit with an invalid manifest applies nothing and says
which file and field; the records of the last good commit stay as they are. A URL the
admin's `GitPolicy` does not allow is fetched never (condition reason `URLNotAllowed`), and
manifests over its size limits apply nothing (`TooLarge`); a failed fetch says so without git's
text (`FetchFailed`).

git fetches with the credentials of the GitSecret `spec.secretRef` names in the repository's
own project, or none (`SecretNotFound` when it is not there; `HostKeysUnknown` for an ssh URL
without its `known_hosts`); never with the controller's. Each repository has a clone of its
own, removed with it.

Every write goes through admission as the repository's writer: a member of its project (no
admin-only fields, the port policy, the project's quota), or an admin when an admin set the
annotation `zun.openstack.org/acts-as: admin` on the GitRepository. A record admission refuses
is reported in status (`Refused`, naming the file's record and the field); the others apply.

It never takes over a record it did not make (models/ownership.py): a manifest naming a record
another writer owns (made by hand, by another repository, an apply-set, the bridge, or an
Application) leaves that record as it is, and the repository reports it — condition `Ready`
False with reason `OwnershipConflict` naming each record and its owner, and a Warning Event
`OwnershipConflict` — until the manifest carries `zun.openstack.org/adopt: "true"` or the
record goes. The other manifests are applied all the same. Prune deletes only records labelled
as this repository's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

from zun_controller.admission import Admission, Writer
from zun_controller.admission.policy import ACTS_AS, ACTS_AS_ADMIN
from zun_controller.engine.client import Records
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.reconciler import Result
from zun_controller.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from zun_controller.gitops.credentials import GitAuth
from zun_controller.gitops.git import Mirror
from zun_controller.gitops.manifests import APPLY_SET, load_records
from zun_controller.gitops.policy import GitPolicy
from zun_controller.models.base import Resource, Scope
from zun_controller.models.event import EventType
from zun_controller.models.gitrepository import GitRepository
from zun_controller.models.gitsecret import GitSecret
from zun_controller.models.ownership import adopts, conflict, gitops, owner_of
from zun_controller.models.registry import kinds
from zun_controller.store.records import RecordStore

log = logging.getLogger(__name__)
FINALIZER = "zun.openstack.org/gitops"
#: characters of a failure's message kept in the Ready condition
MESSAGE_CHARS = 4000

CONFLICT = "OwnershipConflict"


class OwnedElsewhere(ConflictError):
    """A manifest names a record that another writer owns; the message names the owner."""


def writer_of(repo: GitRepository) -> Writer:
    """The rights a repository writes with: its project's member's, unless an admin said more."""
    admin = repo.metadata.annotations.get(ACTS_AS) == ACTS_AS_ADMIN
    return Writer(f"gitrepository {repo.project}/{repo.name}", admin=admin)


class GitRepositoryReconciler:
    def __init__(
        self,
        repos: Records[GitRepository],
        store: RecordStore,
        cache: Path,
        *,
        recorder: EventRecorder | None = None,
        admission: Admission | None = None,
        policy: GitPolicy | None = None,
    ) -> None:
        self.repos, self.store, self.cache = repos, store, cache
        self.recorder = recorder
        self.admission = admission or Admission(store)
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
        except _Refused as exc:
            self._failed(repo, "Refused", str(exc))
        repo.status.observed_generation = repo.metadata.generation
        await self.repos.write_status(repo, before)
        return Result(requeue_after=repo.spec.interval_seconds)

    @staticmethod
    def _failed(repo: GitRepository, reason: str, message: str) -> None:
        repo.status.phase = "Failed"
        cut = message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 3] + "..."
        repo.status.set_condition("Ready", False, reason, cut)

    def _mirror(self, repo: GitRepository) -> Mirror:
        return Mirror(self.cache, repo.spec.url, self.policy, owner=repo.key)

    async def _auth(self, repo: GitRepository) -> GitAuth:
        """The credentials of the GitSecret the repository names, looked up in its project."""
        ref = repo.spec.secret_ref
        if ref is None:
            return GitAuth()
        try:
            secret = await self.store.get(GitSecret, ref.name, repo.project)
        except NotFoundError:
            raise PermanentError(
                "SecretNotFound",
                f"spec.secretRef: no GitSecret {ref.name!r} in project {repo.project!r}",
            ) from None
        return GitAuth.from_secret(secret)

    async def _sync(self, repo: GitRepository) -> None:
        mirror = self._mirror(repo)
        commit = await mirror.fetch(repo.spec.branch, await self._auth(repo))
        repo.status.last_fetched_commit = commit
        files = await mirror.manifests(commit, repo.spec.path)
        desired = load_records(files, repo.project or "", repo.name)
        changed, conflicts, refused = await self._apply_all(repo, desired)
        if commit == repo.status.last_applied_commit:
            repo.status.drift_corrected += len(changed)
        pruned = await self._prune(repo, {r.key for r in desired}) if repo.spec.prune else []
        repo.status.last_applied_commit = commit
        repo.status.applied = sorted(r.key for r in desired if r.key not in conflicts)
        repo.status.pruned = pruned
        if conflicts:
            self._report_conflicts(repo, list(conflicts.values()))
            return
        if refused:
            raise _Refused("; ".join(refused))
        repo.status.phase = "Ready"
        message = f"{len(desired)} records at {commit[:12]}"
        repo.status.set_condition("Ready", True, "Applied", message)

    async def _apply_all(
        self, repo: GitRepository, desired: list[Resource]
    ) -> tuple[list[str], dict[str, str], list[str]]:
        """The keys written, the ones another writer owns (with whom), and the ones admission
        refused (with why)."""
        changed: list[str] = []
        conflicts: dict[str, str] = {}
        refused: list[str] = []
        for record in desired:
            try:
                if await self._apply(repo, record):
                    changed.append(record.key)
            except OwnedElsewhere as exc:
                conflicts[record.key] = str(exc)
            except (InvalidError, ForbiddenError) as exc:
                refused.append(f"{record.key}: {exc}")
        return changed, conflicts, refused

    def _report_conflicts(self, repo: GitRepository, messages: list[str]) -> None:
        repo.status.phase = "Conflict"
        repo.status.set_condition("Ready", False, CONFLICT, "; ".join(sorted(messages)))
        if self.recorder is not None:
            for message in messages:
                self.recorder.record(repo, EventType.WARNING, CONFLICT, message)

    async def _apply(self, repo: GitRepository, desired: Resource) -> bool:
        """Create or correct one record through admission; whether anything was written.
        `OwnedElsewhere` when another writer owns it and the manifest does not adopt it."""
        writer = writer_of(repo)
        try:
            current = await self.store.get(type(desired), desired.name, desired.project)
        except NotFoundError:
            await self.admission.create(desired, writer)
            return True
        owner = owner_of(current.metadata)
        if owner != gitops(repo.name, repo.project) and not adopts(desired.metadata.annotations):
            raise OwnedElsewhere(conflict(desired.key, owner))
        desired = await self.admission.prepare(desired, current, writer)
        meta = current.metadata
        wanted = (desired.spec, desired.metadata.labels, desired.metadata.annotations)
        if (current.spec, meta.labels, meta.annotations) == wanted or meta.deletion_timestamp:
            return False
        old = current.model_copy(deep=True)
        current.spec = desired.spec
        meta.labels, meta.annotations = desired.metadata.labels, desired.metadata.annotations
        await self.admission.update(current, old, writer)
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
        await asyncio.to_thread(shutil.rmtree, self._mirror(repo).dir, ignore_errors=True)
        repo.metadata.finalizers = [f for f in repo.metadata.finalizers if f != FINALIZER]
        with contextlib.suppress(NotFoundError):
            await self.repos.update(repo)
        return Result()


class _Refused(Exception):
    """Admission refused some of the repository's records (the message names each)."""
