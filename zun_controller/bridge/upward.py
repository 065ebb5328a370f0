"""The store side of the bridge: record status goes up into the custom resource's status.

A reconciler per kind on the engine (informer + workqueue), keyed by record: for records whose
source is Kubernetes, patch the custom resource's status subresource with the record's status
when they differ. Level-based: a restart or a resync patches whatever is behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from zun_controller.bridge.mapping import FROM_KUBERNETES, SOURCE, status_for_resource
from zun_controller.engine.client import Records
from zun_controller.engine.reconciler import Result
from zun_controller.errors import InvalidError, TransientError
from zun_controller.models.base import GROUP, VERSION, Resource


class StatusUp:
    def __init__(self, records: Records[Any], api: k8s.CustomObjectsApi) -> None:
        self.records = records
        self.api = api
        self.plural = records.informer.cls.KIND.plural

    async def reconcile(self, key: str) -> Result:
        try:
            record = self.records.get(key)
        except InvalidError:
            return Result()
        if record is None:
            return Result()
        if record.metadata.annotations.get(SOURCE) != FROM_KUBERNETES:
            return Result()
        await asyncio.to_thread(self._patch, record, status_for_resource(record))
        return Result()

    def _patch(self, record: Resource, status: dict[str, Any]) -> None:
        body = {"status": status}
        try:
            if record.project:
                self.api.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    record.project,
                    self.plural,
                    record.name,
                    body,
                    _request_timeout=10,
                )
            else:
                self.api.patch_cluster_custom_object_status(
                    GROUP, VERSION, self.plural, record.name, body, _request_timeout=10
                )
        except ApiException as exc:
            if exc.status == 404:
                return
            raise TransientError(
                f"patch status of {self.plural}/{record.name}: {exc.reason}"
            ) from exc
