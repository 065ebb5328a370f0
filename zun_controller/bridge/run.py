"""`zun-controller bridge`: kopf (spec down) and status controllers (status up), under one
etcd lease (`zun-bridge`), so kopf runs standalone and only one bridge replica acts."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from zun_controller.admission import Admission, AdmissionPolicy
from zun_controller.bridge.operator import Downward, register
from zun_controller.bridge.upward import StatusUp
from zun_controller.engine.client import Records
from zun_controller.engine.controller import Controller
from zun_controller.engine.informer import Informer
from zun_controller.engine.leader import LeaderElector
from zun_controller.engine.manager import Manager, Task
from zun_controller.metrics import Metrics
from zun_controller.models.registry import by_kind
from zun_controller.store.records import RecordStore

#: the kinds users create through kubectl
BRIDGED = ("Container", "Application", "Network", "Volume", "Host", "Cluster")


def _custom_objects(kubeconfig: str) -> k8s.CustomObjectsApi:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration
    )
    return k8s.CustomObjectsApi(k8s.ApiClient(configuration))


def _kopf_task(store: RecordStore, kubeconfig: str, kinds: tuple[str, ...]) -> Task:
    registry = kopf.OperatorRegistry()
    admission = Admission(store, AdmissionPolicy.from_env(os.environ))
    register(registry, Downward(store, admission), list(kinds))

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.persistence.finalizer = "zun.openstack.org/bridge"
        settings.posting.enabled = False
        settings.watching.server_timeout = 60

    async def run() -> None:
        os.environ["KUBECONFIG"] = kubeconfig
        await kopf.operator(registry=registry, clusterwide=True, standalone=True)

    return Task("kopf", run)


def build_bridge(
    store: RecordStore,
    kubeconfig: str,
    metrics: Metrics,
    *,
    health_port: int | None = None,
    identity: str | None = None,
    lease_ttl: int = 10,
    kinds: tuple[str, ...] = BRIDGED,
) -> Manager:
    elector = LeaderElector(
        store.kv, metrics=metrics, name="zun-bridge", identity=identity, ttl=lease_ttl
    )
    store = store.fenced(elector.fence)  # only the bridge that holds the lease writes
    manager = Manager(metrics=metrics, elector=elector, health_port=health_port)
    api = _custom_objects(kubeconfig)
    for kind in kinds:
        cls = by_kind(kind)
        records: Records[Any] = Records(
            store, Informer(store, cls, metrics=metrics, resync_period=60.0)
        )
        name = f"bridge-{cls.KIND.plural}"
        manager.add_controller(
            Controller(name, StatusUp(records, api), records.informer, store=store, metrics=metrics)
        )
    manager.add_task(_kopf_task(store, kubeconfig, kinds))
    return manager


async def serve_bridge(manager: Manager, stop: asyncio.Event) -> None:
    await manager.run(stop)
