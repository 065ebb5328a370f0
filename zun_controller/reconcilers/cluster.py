"""Cluster reconciler: reaches each COE through its orchestrator and reports reachability,
version, nodes and capacity, with condition `Ready` (reasons `Unreachable`, `SecretNotFound`,
`Unsupported`, ...). Credentials never appear in status: messages name fields, not values."""

from __future__ import annotations

import asyncio

from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.errors import PermanentError, ZunError
from zun_controller.models.application import Cluster
from zun_controller.models.host import Usage
from zun_controller.reconcilers.orchestrators import OrchestratorPool, SecretMissing

PROBE_TIMEOUT = 15.0


class ClusterReconciler:
    def __init__(
        self, clusters: Records[Cluster], pool: OrchestratorPool, *, probe_every: float = 15.0
    ) -> None:
        self.clusters = clusters
        self.pool = pool
        self.probe_every = probe_every

    async def reconcile(self, key: str) -> Result:
        cluster = self.clusters.get(key)
        if cluster is None:
            await self.pool.drop(key.split("/", 1)[1])
            return Result()
        before = cluster.status.model_copy(deep=True)
        await self._probe(cluster)
        cluster.status.observed_generation = cluster.metadata.generation
        await self.clusters.write_status(cluster, before)
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
