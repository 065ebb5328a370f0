"""The composition root: builds the store, engine, reconcilers and servers from settings."""

from __future__ import annotations

import contextlib
import os

from zun_controller.admission import AdmissionPolicy
from zun_controller.config import ManagerSettings
from zun_controller.drivers.runtime.base import RuntimeFactory
from zun_controller.engine.actionlog import ActionLog
from zun_controller.engine.gc import register_garbage_collector
from zun_controller.engine.leader import LeaderElector, default_identity
from zun_controller.engine.manager import Manager
from zun_controller.errors import AlreadyExistsError
from zun_controller.gitops.setup import register_gitops
from zun_controller.metrics import Metrics
from zun_controller.models.registry import parse
from zun_controller.reconcilers.app_setup import ApplicationControllers
from zun_controller.reconcilers.setup import RuntimeControllers
from zun_controller.store.records import RecordStore


def build_manager(
    store: RecordStore,
    settings: ManagerSettings,
    metrics: Metrics,
    runtime_factory: RuntimeFactory,
    instance: str = "",
) -> Manager:
    """A manager with every kind's controller registered; `instance` names the installation
    (store/instance.py) on everything it creates outside."""
    elector = (
        LeaderElector(
            store.kv,
            metrics=metrics,
            name=settings.lease_name,
            identity=settings.identity,
            ttl=settings.lease_ttl,
        )
        if settings.leader_election
        else None
    )
    identity = elector.identity if elector else (settings.identity or default_identity())
    if elector is not None:
        store = store.fenced(elector.fence)  # every write of the reconcilers proves the lease
    manager = Manager(
        metrics=metrics,
        elector=elector,
        health_host=settings.health_host,
        health_port=settings.health_port,
        observer=ActionLog(settings.action_log, identity) if settings.action_log else None,
    )
    runtime = RuntimeControllers(
        manager,
        store,
        metrics,
        runtime_factory,
        workers=settings.workers,
        resync_period=settings.resync_period,
        instance=instance,
    )
    ApplicationControllers(
        manager,
        store,
        metrics,
        runtime=runtime,
        workers=settings.workers,
        lb_image=settings.lb_image,
    )
    policy = AdmissionPolicy.from_env(os.environ)
    register_gitops(
        manager,
        store,
        metrics,
        settings.gitops_cache,
        policy=policy,
        git_policy=settings.git_policy,
        recorder=runtime.recorder,
    )
    register_garbage_collector(manager, store, metrics, resync_period=settings.resync_period)
    return manager


async def register_local_host(store: RecordStore, endpoint: str, name: str = "local") -> None:
    """The all-in-one's own engine as a Host (kept as it is when it exists already)."""
    host = parse(
        {
            "apiVersion": "zun.openstack.org/v1alpha1",
            "kind": "Host",
            "metadata": {"name": name, "labels": {"zun.openstack.org/local": "true"}},
            "spec": {"endpoint": endpoint},
        }
    )
    with contextlib.suppress(AlreadyExistsError):
        await store.create(host)
