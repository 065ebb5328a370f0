"""Cluster reconciler: reaches each COE through its orchestrator and reports reachability,
version, nodes and capacity, with condition `Ready` (reasons `Unreachable`, `SecretNotFound`,
`Unsupported`, ...). Credentials never appear in status: messages name fields, not values.

A Cluster with Applications on it is held on delete (the in-use rule, reconcilers/inuse.py): it
keeps being probed, so those Applications can still remove what they made on its engine, and
goes once none names it in `spec.cluster` or still has a side of a migration there.
`cluster_users` and `secret_users` say who uses what; `SecretReconciler` holds a Secret that a
Cluster names the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.errors import PermanentError, ZunError
from zun_controller.models.application import Application, Cluster, Secret
from zun_controller.models.host import Usage
from zun_controller.reconcilers.app_migration import sides
from zun_controller.reconcilers.inuse import InUseGuard, User
from zun_controller.reconcilers.orchestrators import OrchestratorPool, SecretMissing

PROBE_TIMEOUT = 15.0


def cluster_users(apps: Records[Application]) -> Callable[[Cluster], list[User]]:
    """The Applications whose `spec.cluster` names a Cluster, or that may still have
    something there (the serving or either side of a migration; in any project)."""

    def uses(app: Application, name: str) -> bool:
        return app.spec.cluster == name or name in sides(app)

    def users(cluster: Cluster) -> list[User]:
        return [User.of(a) for a in apps.all(lambda a: uses(a, cluster.name))]

    return users


def secret_refs(cluster: Cluster) -> set[str]:
    """The names of the Secrets a Cluster's spec refers to."""
    refs = (cluster.spec.tls_secret, cluster.spec.kubeconfig_secret)
    return {ref.name for ref in refs if ref is not None}


def secret_users(clusters: Records[Cluster]) -> Callable[[Secret], list[User]]:
    """The Clusters whose `spec.tlsSecret` or `spec.kubeconfigSecret` names a Secret."""

    def users(secret: Secret) -> list[User]:
        return [User.of(c) for c in clusters.all(lambda c: secret.name in secret_refs(c))]

    return users


class SecretReconciler:
    """Secrets have nothing outside: only the in-use rule applies to them."""

    def __init__(self, secrets: Records[Secret], clusters: Records[Cluster]) -> None:
        self.secrets = secrets
        self.guard = InUseGuard(secrets, secret_users(clusters))

    async def reconcile(self, key: str) -> Result:
        return await self.guard.reconcile(key)


class ClusterReconciler:
    def __init__(
        self,
        clusters: Records[Cluster],
        pool: OrchestratorPool,
        apps: Records[Application],
        *,
        probe_every: float = 15.0,
    ) -> None:
        self.clusters = clusters
        self.pool = pool
        self.probe_every = probe_every
        self.guard = InUseGuard(clusters, cluster_users(apps))

    async def reconcile(self, key: str) -> Result:
        cluster = self.clusters.get(key)
        if cluster is None:
            await self.pool.drop(key.split("/", 1)[1])
            return Result()
        cluster = await self.guard.protect(cluster)
        before = cluster.status.model_copy(deep=True)
        await self._probe(cluster)
        cluster.status.observed_generation = cluster.metadata.generation
        cluster = await self.clusters.write_status(cluster, before)
        if cluster.metadata.deletion_timestamp:
            return await self.guard.finalize(cluster)
        return Result(requeue_after=self.probe_every)

    async def _probe(self, cluster: Cluster) -> None:
        status = cluster.status
        try:
            orchestrator = await self.pool.get(cluster)
            async with asyncio.timeout(PROBE_TIMEOUT):
                info = await orchestrator.info()
        except SecretMissing as exc:
            self._not_ready(cluster, "SecretNotFound", str(exc))
            return
        except PermanentError as exc:
            self._not_ready(cluster, exc.reason, exc.message)
            return
        except (ZunError, TimeoutError) as exc:
            self._not_ready(cluster, "Unreachable", f"{cluster.spec.type.value}: {exc}")
            return
        status.reachable = True
        status.version = info.version
        status.nodes = info.nodes
        status.capacity = Usage(cpu=info.cpus, memory=info.memory)
        status.phase = "Ready"
        status.set_condition("Ready", True, "Reachable", f"{info.nodes} node(s), {info.version}")

    @staticmethod
    def _not_ready(cluster: Cluster, reason: str, message: str) -> None:
        cluster.status.reachable = False
        cluster.status.phase = "NotReady"
        cluster.status.set_condition("Ready", False, reason, message)
