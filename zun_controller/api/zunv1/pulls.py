"""Image pulls asked for through `/v1/images`: one pull per (host, image, credentials) at a
time, at most `concurrent` running and `queued` in flight; the wait for a slot and the pull
are each bounded by `timeout` seconds.

A second request for a pull in flight waits for that pull (single flight). A pull goes on when
the request that started it goes away (a client that gives up does not cancel it for the
others). Beyond `queued` pulls in flight a request is 503, at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

from zun_controller.api.io import Credentials, ImageIO, LocalImage
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.models.host import Host

Key = tuple[str, str, str]  # host, image, digest of the credentials


def _fingerprint(credentials: Credentials | None) -> str:
    if credentials is None:
        return ""
    raw = "\0".join((credentials.registry, credentials.username, credentials.password))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


class Pulls:
    def __init__(self, *, timeout: float = 300.0, concurrent: int = 2, queued: int = 16) -> None:
        self.timeout, self.queued = timeout, queued
        self._slots = asyncio.Semaphore(concurrent)
        self._flights: dict[Key, asyncio.Task[LocalImage]] = {}

    def in_flight(self) -> Sequence[Key]:
        return list(self._flights)

    async def pull(
        self, io: ImageIO, host: Host, image: str, credentials: Credentials | None
    ) -> LocalImage:
        """The image once pulled onto `host`; the pull's own error if it failed."""
        key = (host.name, image, _fingerprint(credentials))
        task = self._flights.get(key)
        if task is None:
            if len(self._flights) >= self.queued:
                raise ZunV1Error(503, f"{len(self._flights)} image pulls in progress: try later")
            task = asyncio.create_task(self._bounded(io, host, image, credentials))
            self._flights[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task)

    async def _bounded(
        self, io: ImageIO, host: Host, image: str, credentials: Credentials | None
    ) -> LocalImage:
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise ZunV1Error(503, f"no image pull slot free within {self.timeout:g} s") from None
        try:
            return await io.pull(host, image, credentials, within=self.timeout)
        finally:
            self._slots.release()

    def _landed(self, key: Key, task: asyncio.Task[LocalImage]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody waits for any more is not logged
