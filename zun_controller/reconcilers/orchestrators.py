"""Orchestrators by Cluster: the factory mapping a Cluster's type onto an `Orchestrator`, and a
pool that keeps one per Cluster until its spec or its Secret changes.

- `swarm`: `SwarmOrchestrator` on the Cluster's endpoint, TLS PEMs from `spec.tlsSecret`,
  registry credentials from the template's `imagePullSecrets` (PullSecrets of the app's
  project), read at each apply (also given to the Kubernetes orchestrator, which makes them
  the app's `kubernetes.io/dockerconfigjson` Secret).
- `docker`: Zun's own Containers on the Cluster's Hosts (reconcilers.app_docker), built by
  the `docker` callable the wiring passes in (it needs records, which drivers cannot see).
- `kubernetes`: `KubernetesOrchestrator(name, kubeconfig)`, imported lazily; while that module
  is absent the Cluster is `Unsupported`.

Given `Metrics`, each orchestrator's calls are counted and timed by the Cluster's type
(reconcilers/instrumented.py).

Secret values go into the orchestrator only; no message here quotes them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, cast

from zun_controller.drivers.orchestrators.base import Orchestrator
from zun_controller.drivers.orchestrators.swarm import SwarmOrchestrator
from zun_controller.drivers.runtime.base import RegistryAuth
from zun_controller.engine.client import Records
from zun_controller.errors import PermanentError
from zun_controller.metrics import Metrics
from zun_controller.models.application import (
    Application,
    AppTemplate,
    Cluster,
    ClusterType,
    Secret,
    SecretRef,
)
from zun_controller.models.pullsecret import PullSecret
from zun_controller.reconcilers.container_pull import pull_credentials
from zun_controller.reconcilers.instrumented import (
    InstrumentedOrchestrator,
    init_orchestrator_metrics,
)
from zun_controller.reconcilers.waiting import Waiting

DockerFactory = Callable[[Cluster], Orchestrator]
KUBERNETES_MODULE = "zun_controller.drivers.orchestrators.kubernetes"


class SecretMissing(Exception):
    """A Secret the Cluster names does not exist (yet)."""

    def __init__(self, field: str, name: str) -> None:
        super().__init__(f"{field}: Secret {name!r} does not exist")


def _kubernetes(cluster: Cluster, kubeconfig: str, credentials: Any = None) -> Orchestrator:
    try:
        module: Any = importlib.import_module(KUBERNETES_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != KUBERNETES_MODULE:
            raise
        raise PermanentError(
            "Unsupported", "kubernetes clusters need the Kubernetes orchestrator module"
        ) from None
    return cast(
        Orchestrator,
        module.KubernetesOrchestrator(cluster.name, kubeconfig, credentials=credentials),
    )


class OrchestratorPool:
    def __init__(
        self,
        secrets: Records[Secret],
        docker: DockerFactory | None = None,
        metrics: Metrics | None = None,
        pull_secrets: Records[PullSecret] | None = None,
    ) -> None:
        self.secrets = secrets
        self.pull_secrets = pull_secrets
        self.docker = docker
        self.metrics = metrics
        self._known: dict[str, tuple[str, Orchestrator]] = {}
        if metrics is not None:
            init_orchestrator_metrics(metrics)

    def _secret(self, field: str, ref: SecretRef | None) -> Secret | None:
        if ref is None:
            return None
        secret = self.secrets.get_by_name(ref.name)
        if secret is None:
            raise SecretMissing(field, ref.name)
        return secret

    def _fingerprint(self, cluster: Cluster, secrets: list[Secret | None]) -> str:
        versions = ",".join(s.metadata.resource_version or "" if s else "-" for s in secrets)
        return f"{cluster.spec.model_dump_json()}|{versions}"

    def _build(self, cluster: Cluster, tls: Secret | None, kube: Secret | None) -> Orchestrator:
        spec = cluster.spec
        if spec.type is ClusterType.SWARM:
            return SwarmOrchestrator(
                cluster.name,
                spec.endpoint or "",
                tls.spec.data if tls else None,
                credentials=self._credentials,
            )
        if spec.type is ClusterType.KUBERNETES:
            assert kube is not None
            if "kubeconfig" not in kube.spec.data:
                raise PermanentError(
                    "InvalidConfig", "kubeconfigSecret: key 'kubeconfig' is missing"
                )
            return _kubernetes(cluster, kube.spec.data["kubeconfig"], self._credentials)
        if self.docker is None:
            raise PermanentError("Unsupported", "docker clusters are not wired in this manager")
        return self.docker(cluster)

    def _credentials(self, app: Application, template: AppTemplate) -> RegistryAuth | None:
        """The registry credentials of the template's (first) container, if it names any."""
        container = template.containers[0]
        field = "spec.template.containers[0].imagePullSecrets"
        try:
            return pull_credentials(
                self.pull_secrets, app.project, container.image, container.image_pull_secrets, field
            )
        except Waiting as wait:
            raise PermanentError(wait.reason, wait.message) from None

    async def get(self, cluster: Cluster) -> Orchestrator:
        """The Cluster's orchestrator; `SecretMissing`, or `PermanentError` when unsupported."""
        tls = self._secret("spec.tlsSecret", cluster.spec.tls_secret)
        kube = self._secret("spec.kubeconfigSecret", cluster.spec.kubeconfig_secret)
        fingerprint = self._fingerprint(cluster, [tls, kube])
        known = self._known.get(cluster.name)
        if known and known[0] == fingerprint:
            return known[1]
        await self.drop(cluster.name)
        orchestrator = self._build(cluster, tls, kube)
        if self.metrics is not None:
            orchestrator = InstrumentedOrchestrator(orchestrator, self.metrics, cluster.spec.type)
        self._known[cluster.name] = (fingerprint, orchestrator)
        return orchestrator

    async def drop(self, name: str) -> None:
        known = self._known.pop(name, None)
        if known:
            await known[1].close()

    async def close(self) -> None:
        for name in list(self._known):
            await self.drop(name)
