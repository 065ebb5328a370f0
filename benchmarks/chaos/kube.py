"""The workload's way in through Kubernetes: `Container` custom resources in the namespace named
after the run's project, which `zun-controller bridge` (SIGKILLed as a fault) mirrors into the
store, spec down and status up.

A write counts as acknowledged when kube-apiserver accepted it; the bridge must then carry it
into the store, whatever happens to the bridge. Such Containers are only ever changed through
Kubernetes (the bridge owns them: zun_controller/bridge/README.md). Writes are retried and safe
to repeat: 409 on create and 404 on delete mean done; changes are merge patches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from benchmarks.chaos.retry import NotYet, retrying

GROUP, VERSION, PLURAL = "zun.openstack.org", "v1alpha1", "containers"


class KubeUnavailable(Exception):
    """kube-apiserver did not accept a write in time."""


class ChaosKube:
    def __init__(self, kubeconfig: Path, namespace: str, limit: float = 120.0) -> None:
        api_client = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self._api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self._limit = limit

    async def _send(self, call: Callable[[], object], done: set[int]) -> None:
        async def once() -> None:
            try:
                await asyncio.to_thread(call)
            except client.ApiException as exc:
                if exc.status in done:
                    return
                if exc.status and exc.status < 500 and exc.status not in {409, 429}:
                    raise KubeUnavailable(f"{exc.status} {exc.reason}: {exc.body}") from exc
                raise NotYet(exc.status) from exc

        try:
            await retrying(once, self._limit, (NotYet,))
        except NotYet:
            raise KubeUnavailable(f"no answer within {self._limit:.0f}s") from None

    async def create(self, doc: dict[str, Any]) -> None:
        body = {**doc, "metadata": {**doc["metadata"], "namespace": self.namespace}}
        body["metadata"].pop("project", None)
        await self._send(
            lambda: self._api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            ),
            {409},
        )

    async def patch(self, name: str, patch: dict[str, Any]) -> None:
        await self._send(
            lambda: self._api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, patch
            ),
            set(),
        )

    async def delete(self, name: str) -> None:
        await self._send(
            lambda: self._api.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            ),
            {404},
        )

    def list(self) -> dict[str, dict[str, Any]]:
        """Every Container custom resource of the namespace, by name."""
        found = cast(
            dict[str, Any],
            self._api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL),
        )
        return {item["metadata"]["name"]: item for item in found["items"]}

    def close(self) -> None:
        self._api.api_client.close()
