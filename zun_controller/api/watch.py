"""`?watch=true`: newline-delimited `{"type": "ADDED|MODIFIED|DELETED", "object": {...}}`.

Without `resourceVersion` (or with 0) the stream starts with an ADDED event per current record,
then follows changes; with `resourceVersion=N` it sends every change after N. A compacted N
gives one `ERROR` event carrying a 410 Status, then the stream ends (list again), as Kubernetes.
`timeoutSeconds` ends the stream after that long; the server ends it after
`ApiLimits.stream_timeout` whatever the client asked (clients watch again, as with
kube-apiserver's request timeout).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from zun_controller.api import access
from zun_controller.api.auth import Principal
from zun_controller.api.context import ApiContext
from zun_controller.api.errors import ApiError, status_body
from zun_controller.api.limits import until
from zun_controller.errors import CompactedError, InvalidError
from zun_controller.models.base import Resource
from zun_controller.store.codec import decode
from zun_controller.store.keys import kind_prefix, queue_key, split_queue_key
from zun_controller.store.kv import EventType, KVEvent
from zun_controller.store.selector import parse_selector


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _deleted(cls: type[Resource], event: KVEvent) -> dict[str, Any]:
    _, project, name = split_queue_key(queue_key(event.key))
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(event.mod_revision)}
    if project:
        meta["project"] = project
    return {"apiVersion": "zun.openstack.org/v1alpha1", "kind": cls.KIND.kind, "metadata": meta}


class Watch:
    def __init__(
        self,
        ctx: ApiContext,
        who: Principal,
        cls: type[Resource],
        project: str | None,
        params: dict[str, Any],
    ) -> None:
        self.ctx, self.who, self.cls, self.project = ctx, who, cls, project
        self.match = parse_selector(params.get("labelSelector"))
        self.since = int(params.get("resourceVersion") or 0)
        self.timeout = ctx.limits.stream_seconds(params.get("timeoutSeconds"))
        self.known: set[str] = set()

    def stream(self) -> AsyncIterator[bytes]:
        return until(self._events(), self.timeout)

    async def _events(self) -> AsyncIterator[bytes]:
        start = self.since + 1
        if not self.since:
            page = await self.ctx.store.list(self.cls, self.project)
            for obj in page.items:
                if self._shown(obj):
                    self.known.add(obj.key)
                    yield _line("ADDED", obj.to_wire())
            start = int(page.resource_version) + 1
        try:
            async for batch in self.ctx.store.watch(
                kind_prefix(self.cls.KIND, self.project), start
            ):
                for event in batch:
                    line = self._event(event)
                    if line:
                        yield line
        except CompactedError as exc:
            yield _line("ERROR", status_body(ApiError(410, str(exc), reason="Expired")))

    def _shown(self, obj: Resource) -> bool:
        return access.visible(self.who, obj) and self.match(obj.metadata.labels)

    def _event(self, event: KVEvent) -> bytes | None:
        if event.type is EventType.DELETE:
            obj = _deleted(self.cls, event)
            project = obj["metadata"].get("project")
            if not self.who.admin and (project or obj["metadata"]["name"]) not in self.who.projects:
                return None
            return _line("DELETED", obj)
        try:
            rec = decode(self.cls, event.value, event.mod_revision)
        except InvalidError:
            return None
        if not self._shown(rec):
            return None
        kind = "MODIFIED" if rec.metadata.generation > 1 or rec.key in self.known else "ADDED"
        self.known.add(rec.key)
        return _line(kind, rec.to_wire())
