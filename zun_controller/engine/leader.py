"""Leader election on an etcd lease: one replica acts, another takes over when it dies.

The leader holds `/zun/leases/<name>`, a key bound to a lease of `ttl` seconds that it keeps
alive every `ttl / 3`. If it cannot renew for `renew_deadline` (< ttl) it stops acting first,
before the lease can expire and a rival can win, as client-go's leaderelection does. On a
graceful stop it revokes the lease so a standby takes over at once.

`fence` (store/fence.py) carries the lease to the leader's store and reconcilers: each write
compares the leader key's revision, and engine calls are refused once the renew deadline has
passed, even when this loop is too starved to notice; a refused write stops the leader at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

from zun_controller.engine.clock import Clock, RealClock
from zun_controller.errors import ZunError
from zun_controller.metrics import Metrics
from zun_controller.store.fence import Fence
from zun_controller.store.kv import KV, Txn

log = logging.getLogger(__name__)
LEASE_ROOT = "/zun/leases/"


class LeadershipLost(ZunError):
    """The lease could not be renewed in time; the process must stop acting."""


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class LeaderElector:
    def __init__(
        self,
        kv: KV,
        *,
        metrics: Metrics,
        name: str = "zun-controller",
        identity: str | None = None,
        ttl: int = 10,
        retry_period: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._clock: Clock = clock or RealClock()
        self.kv = kv
        self.name = name
        self.identity = identity or default_identity()
        self.ttl = ttl
        self.renew_period = ttl / 3
        self.renew_deadline = ttl * 2 / 3
        self.retry_period = retry_period
        self.key = LEASE_ROOT + name
        self.is_leader = False
        self._lease = 0
        self.fence = Fence(self._clock.now)
        self._gauge = metrics.leader.labels(name)
        self._gauge.set(0)

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Campaign until elected, then run `lead()` while holding the lease.

        Returns when `lead()` returns; raises `LeadershipLost` if the lease slips away.
        """
        await self._acquire()
        work = asyncio.create_task(lead())
        renew = asyncio.create_task(self._renew())
        fenced = asyncio.create_task(self.fence.lost.wait())
        try:
            done, _ = await asyncio.wait({work, renew, fenced}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                work.result()
                return
            self._set_leader(False)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            if renew in done:
                renew.result()
            log.error("lost leadership", extra={"lease": self.name, "identity": self.identity})
            raise LeadershipLost(f"lease {self.name}: etcd refused a write, another replica leads")
        finally:
            for task in (renew, work, fenced):
                task.cancel()
            await asyncio.gather(renew, work, fenced, return_exceptions=True)
            await self._release()

    async def _acquire(self) -> None:
        while True:
            with contextlib.suppress(ZunError):
                if await self._try_acquire():
                    self._set_leader(True)
                    log.info("became leader", extra={"lease": self.name, "identity": self.identity})
                    return
            await self._clock.sleep(self.retry_period)

    async def _try_acquire(self) -> bool:
        if await self.kv.get(self.key) is not None:
            return False
        sent = self._clock.now()
        lease = await self.kv.grant_lease(self.ttl)
        value = json.dumps({"holder": self.identity, "acquired": time.time()}).encode()
        result = await self.kv.commit(
            Txn(compares=[(self.key, 0)], puts=[(self.key, value)], lease=lease)
        )
        if result.succeeded:
            self._lease = lease
            self.fence.arm(self.key, result.revision, sent + self.renew_deadline)
            return True
        await self.kv.revoke_lease(lease)
        return False

    async def _renew(self) -> None:
        last_renewed = self._clock.now()
        while True:
            await self._clock.sleep(self.renew_period)
            sent = self._clock.now()
            try:
                async with asyncio.timeout(self.renew_period):
                    ttl = await self.kv.keep_alive(self._lease)
            except (ZunError, TimeoutError):
                ttl = -1
            now = self._clock.now()
            if ttl > 0:
                last_renewed = sent
                self.fence.renewed(sent + self.renew_deadline)
            elif ttl == 0 or now - last_renewed >= self.renew_deadline:
                self._set_leader(False)
                log.error("lost leadership", extra={"lease": self.name, "identity": self.identity})
                raise LeadershipLost(
                    f"lease {self.name} not renewed within {self.renew_deadline:.1f}s"
                )

    async def _release(self) -> None:
        self._set_leader(False)
        if self._lease:
            with contextlib.suppress(ZunError, TimeoutError):
                await asyncio.wait_for(self.kv.revoke_lease(self._lease), 2)
            self._lease = 0

    def _set_leader(self, value: bool) -> None:
        self.is_leader = value
        if not value:
            self.fence.lose()
        self._gauge.set(1 if value else 0)
