"""The workload's way in through the REST API (`zun-controller api`, which the faults SIGKILL).

A write counts as acknowledged only when the API answered it; until then it is retried, through
the API's restarts and etcd's outages. Every write here is safe to repeat: a create that meets
409 AlreadyExists went through on an earlier try whose answer was lost; a merge patch sets the
same fields again; a delete that meets 404 is done.
"""

from __future__ import annotations

from typing import Any

import httpx

from benchmarks.chaos.retry import NotYet, retrying
from zun_controller.api.context import PREFIX


class ApiUnavailable(Exception):
    """The API did not acknowledge a write in time."""


class ChaosApi:
    def __init__(self, url: str, token: str, limit: float = 120.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=url + PREFIX, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
        )
        self._limit = limit
        self.retries = 0

    async def _send(self, method: str, path: str, done: set[int], body: Any = None) -> int:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}

        async def once() -> int:
            response = await self._client.request(method, path, json=body, headers=headers)
            if response.status_code in done:
                return response.status_code
            if response.status_code < 500 and response.status_code != 409:
                raise ApiUnavailable(f"{method} {path}: {response.status_code} {response.text}")
            raise NotYet(response.status_code)

        try:  # a TransportError: the API is down (SIGKILLed) or restarting
            return await retrying(once, self._limit, (httpx.TransportError, NotYet), self._count)
        except (httpx.TransportError, NotYet):
            raise ApiUnavailable(f"{method} {path}: no answer within {self._limit:.0f}s") from None

    def _count(self) -> None:
        self.retries += 1

    async def create(self, project: str, plural: str, doc: dict[str, Any]) -> None:
        await self._send("POST", f"/projects/{project}/{plural}", {201, 409}, doc)

    async def patch(self, project: str, plural: str, name: str, patch: dict[str, Any]) -> None:
        await self._send("PATCH", f"/projects/{project}/{plural}/{name}", {200}, patch)

    async def delete(self, project: str, plural: str, name: str) -> None:
        await self._send("DELETE", f"/projects/{project}/{plural}/{name}", {200, 404})

    async def close(self) -> None:
        await self._client.aclose()
