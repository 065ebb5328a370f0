"""Wires Applications, Clusters and Secrets into a manager: informers, the three controllers,
the mappings between kinds (a Cluster, Secret or PullSecret change wakes what depends on it; an
Application or Cluster change wakes the deleting Cluster, Secret or PullSecret it held), and
the shared orchestrator pool. With the runtime's controllers, Applications are users of the
PullSecrets their templates name."""

from __future__ import annotations

from collections.abc import Iterable

from zun_controller.drivers.orchestrators.base import Orchestrator
from zun_controller.engine.client import Records
from zun_controller.engine.convergence import phase_ready_at, track_convergence
from zun_controller.engine.events import EventRecorder
from zun_controller.engine.informer import Cached, Informer
from zun_controller.engine.manager import Manager, Task
from zun_controller.metrics import Metrics
from zun_controller.models.application import Application, Cluster, Secret
from zun_controller.reconcilers.app_docker import DEFAULT_LB_IMAGE, DockerOrchestrator
from zun_controller.reconcilers.app_docker_status import LABEL_APP
from zun_controller.reconcilers.application import ApplicationReconciler
from zun_controller.reconcilers.cluster import ClusterReconciler, SecretReconciler
from zun_controller.reconcilers.inuse import deleting
from zun_controller.reconcilers.orchestrators import DockerFactory, OrchestratorPool
from zun_controller.reconcilers.setup import (
    ControllerSet,
    RuntimeControllers,
    cached_field,
    pull_secret_names,
    recorder_task_needed,
)
from zun_controller.store.records import RecordStore


def _any_change(old: Cached | None, new: Cached | None) -> bool:
    return True


def _clusters_of(cached: Cached | None) -> set[object]:
    """The Clusters a cached Application names: spec, serving side, a migration's sides."""
    return {
        cached_field(cached, "spec", "cluster"),
        cached_field(cached, "status", "cluster"),
        cached_field(cached, "status", "migration", "fromCluster"),
        cached_field(cached, "status", "migration", "toCluster"),
    } - {None}


class ApplicationControllers(ControllerSet):
    """The unified COE API's controllers, registered on one manager."""

    pool: OrchestratorPool

    def __init__(
        self,
        manager: Manager,
        store: RecordStore,
        metrics: Metrics,
        *,
        runtime: RuntimeControllers | None = None,
        docker: DockerFactory | None = None,
        workers: int = 4,
        resync_period: float = 60.0,
        probe_every: float = 15.0,
        lb_image: str = DEFAULT_LB_IMAGE,
        recorder: EventRecorder | None = None,
    ) -> None:
        self._lb_image = lb_image
        self.recorder = recorder or (runtime.recorder if runtime else EventRecorder(store, metrics))
        self._store, self._metrics, self._workers = store, metrics, workers
        self.apps = Records(
            store, Informer(store, Application, metrics=metrics, resync_period=resync_period)
        )
        self.clusters = Records(
            store, Informer(store, Cluster, metrics=metrics, resync_period=resync_period)
        )
        self.secrets = Records(
            store, Informer(store, Secret, metrics=metrics, resync_period=resync_period)
        )
        self.pull_secrets = runtime.pull_secrets if runtime is not None else None
        self.pool = OrchestratorPool(
            self.secrets,
            docker or self._docker_factory(runtime),
            metrics=metrics,
            pull_secrets=self.pull_secrets,
        )
        self.application = self._controller(
            "application",
            ApplicationReconciler(
                self.apps, self.clusters, self.pool, recorder=self.recorder, metrics=metrics
            ),
            self.apps.informer,
        )
        self.cluster = self._controller(
            "cluster",
            ClusterReconciler(self.clusters, self.pool, self.apps, probe_every=probe_every),
            self.clusters.informer,
        )
        self.secret = self._controller(
            "secret", SecretReconciler(self.secrets, self.clusters), self.secrets.informer
        )
        if runtime is not None:
            self.application.watches(
                runtime.containers.informer, self._app_of_container, _any_change
            )
            self.cluster.watches(runtime.hosts.informer, self._all_clusters, _any_change)
        self.application.watches(self.clusters.informer, self._apps_of_cluster, _any_change)
        if runtime is not None:
            self.application.watches(runtime.pull_secrets.informer, self._apps_of_pull_secret)
            runtime.pull_secret_reconciler.count_applications(self.apps)
            runtime.pull_secret.watches(
                self.apps.informer, self._deleting_pull_secrets_of_app, _any_change
            )
        self.cluster.watches(self.secrets.informer, self._clusters_of_secret, _any_change)
        self.cluster.watches(self.apps.informer, self._deleting_cluster_of_app, _any_change)
        self.secret.watches(self.clusters.informer, self._deleting_secrets_of, _any_change)
        manager.add_controller(self.secret)
        manager.add_controller(self.cluster)
        manager.add_controller(self.application)
        manager.add_task(Task("orchestrator-pool-close", self._close_pool_on_stop))
        track_convergence(self.apps.informer, metrics, ready=phase_ready_at)
        if recorder_task_needed(manager, self.recorder):
            manager.add_task(Task("event-recorder", self.recorder.run))

    def _docker_factory(self, runtime: RuntimeControllers | None) -> DockerFactory | None:
        """Docker clusters run on the reference implementation's records: without it, none."""
        if runtime is None:
            return None

        def build(cluster: Cluster) -> Orchestrator:
            return DockerOrchestrator(
                cluster, runtime.containers, runtime.hosts, runtime.pool, lb_image=self._lb_image
            )

        return build

    def _all_clusters(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        return self.clusters.informer.list_keys()

    def _app_of_container(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        project = key.split("/")[1]
        names = {cached_field(c, "metadata", "labels", LABEL_APP) for c in (old, new)}
        return [f"applications/{project}/{n}" for n in names if isinstance(n, str)]

    def _apps_of_cluster(self, key: str, old: Cached | None, new: Cached | None) -> Iterable[str]:
        cluster = key.split("/", 1)[1]
        informer = self.apps.informer
        return [k for k in informer.list_keys() if cluster in _clusters_of(informer.raw(k))]

    def _deleting_cluster_of_app(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        names = _clusters_of(old) | _clusters_of(new)
        keys = [f"clusters/{n}" for n in names if isinstance(n, str)]
        return [k for k in keys if deleting(self.clusters.informer.raw(k))]

    def _deleting_secrets_of(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        names: set[str] = set()
        for cached in (old, new):
            for ref in ("tlsSecret", "kubeconfigSecret"):
                name = cached_field(cached, "spec", ref, "name")
                if isinstance(name, str):
                    names.add(name)
        keys = [f"secrets/{n}" for n in names]
        return [k for k in keys if deleting(self.secrets.informer.raw(k))]

    def _apps_of_pull_secret(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        """The project's Applications whose template names the PullSecret (Swarm and
        Kubernetes take the credentials at apply)."""
        _, project, name = key.split("/")
        informer = self.apps.informer
        for k in informer.list_keys():
            if k.split("/")[1] != project:
                continue
            containers = cached_field(informer.raw(k), "spec", "template", "containers")
            for c in containers if isinstance(containers, list) else []:
                refs = c.get("imagePullSecrets") if isinstance(c, dict) else None
                if isinstance(refs, list) and {"name": name} in refs:
                    yield k
                    break

    def _deleting_pull_secrets_of_app(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        """The deleting PullSecrets an Application's template named or names."""
        assert self.pull_secrets is not None  # watched only with the runtime's controllers
        project = key.split("/")[1]
        path = ("spec", "template", "containers")
        keys = {f"pullsecrets/{project}/{n}" for n in pull_secret_names(old, new, path=path)}
        return [k for k in keys if deleting(self.pull_secrets.informer.raw(k))]

    def _clusters_of_secret(
        self, key: str, old: Cached | None, new: Cached | None
    ) -> Iterable[str]:
        secret = key.split("/", 1)[1]
        informer = self.clusters.informer
        out = []
        for k in informer.list_keys():
            for ref in ("tlsSecret", "kubeconfigSecret"):
                if cached_field(informer.raw(k), "spec", ref, "name") == secret:
                    out.append(k)
        return out
