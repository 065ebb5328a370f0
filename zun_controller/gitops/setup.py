"""Registers the GitRepository controller on a manager."""

from __future__ import annotations

from pathlib import Path

from zun_controller.admission import Admission, AdmissionPolicy
from zun_controller.engine.client import Records
from zun_controller.engine.controller import Controller
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.informer import Informer
from zun_controller.engine.manager import Manager, Task
from zun_controller.gitops.git import clear_git_home
from zun_controller.gitops.policy import GitPolicy
from zun_controller.gitops.reconciler import GitRepositoryReconciler
from zun_controller.metrics import Metrics
from zun_controller.models.gitrepository import GitRepository
from zun_controller.store.records import RecordStore


def register_gitops(
    manager: Manager,
    store: RecordStore,
    metrics: Metrics,
    cache: Path,
    *,
    policy: AdmissionPolicy | None = None,
    git_policy: GitPolicy | None = None,
    recorder: EventRecorder | None = None,
) -> None:
    """`recorder`: the manager's shared one; without it the GitOps controller writes its
    Events with one of its own. `git_policy`: what repositories may be read and how much
    (https/ssh, default limits). Key files a crashed fetch left in `cache` are removed."""
    clear_git_home(cache)
    repos = Records(store, Informer(store, GitRepository, metrics=metrics, resync_period=60.0))
    if recorder is None:
        recorder = EventRecorder(store, metrics)
        manager.add_task(Task("gitops-event-recorder", recorder.run))
    reconciler = GitRepositoryReconciler(
        repos,
        store,
        cache,
        recorder=recorder,
        admission=Admission(store, policy),
        policy=git_policy,
    )
    manager.add_controller(
        Controller("gitrepository", reconciler, repos.informer, store=store, metrics=metrics)
    )
