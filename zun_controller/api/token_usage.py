"""`UsageWriter`: records when each token was last used (`lastUsedAt`), at most once a minute
per token, off the request path.

`seen` costs no I/O: it queues a write only when the stored `lastUsedAt` is older than the
interval and this process has not written one for that token within it. `run()` writes what is
queued, each write compared on the record's mod_revision: when another replica wrote it first,
or the token was revoked meanwhile, the write does nothing (a revoked token is never written
back). So etcd sees at most one usage write per token per interval, whatever the request rate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta

from zun_controller.api.token_record import rfc3339
from zun_controller.api.token_view import TOKENS, Entry
from zun_controller.errors import ZunError
from zun_controller.store.kv import KV, Txn

log = logging.getLogger(__name__)
#: writes per etcd request (etcd's default --max-txn-ops is 128)
BATCH = 50
#: tokens remembered or queued at most; past it the oldest knowledge is dropped
MAX_TRACKED = 10_000


class UsageWriter:
    def __init__(self, kv: KV, *, every: timedelta = timedelta(minutes=1)) -> None:
        self.kv = kv
        self.every = every
        self._due: dict[str, tuple[Entry, datetime]] = {}
        self._wrote: dict[str, datetime] = {}
        self._wake = asyncio.Event()

    def seen(self, entry: Entry, now: datetime) -> None:
        """A request authenticated with this token at `now`."""
        last = entry.record.last_used_at
        if last is not None and now - last < self.every:
            return
        wrote = self._wrote.get(entry.digest)
        if wrote is not None and now - wrote < self.every:
            return
        if entry.digest in self._due or len(self._due) >= MAX_TRACKED:
            return
        self._due[entry.digest] = (entry, now)
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: write what `seen` queued."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        due, self._due = list(self._due.values()), {}
        if len(self._wrote) > MAX_TRACKED:
            self._wrote.clear()
        for entry, when in due:
            self._wrote[entry.digest] = when
        for start in range(0, len(due), BATCH):
            txns = [_touch(entry, when) for entry, when in due[start : start + BATCH]]
            try:
                await self.kv.commit_many(txns)
            except ZunError as exc:
                log.info("token usage not written", extra={"error": str(exc)})


def _touch(entry: Entry, when: datetime) -> Txn:
    data = json.loads(entry.raw)
    data["lastUsedAt"] = rfc3339(when)
    key = TOKENS + entry.digest
    return Txn(
        compares=[(key, entry.mod_revision)],
        puts=[(key, json.dumps(data, separators=(",", ":")).encode())],
    )
