"""`TokenView`: one API process's in-memory copy of every token record, fed by a watch on
`/zun/tokens/`, so a token revoked or changed through any replica is seen here as soon as etcd
sends the change (milliseconds), with no read per request.

`run()` lists the prefix at one revision, then watches from the next; when the watch is lost
(connection dropped, revision compacted) the view stops answering (`synced` is False: callers
read etcd instead) until it has listed again. A record that does not parse is left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError

from zun_controller.api.token_record import TokenRecord
from zun_controller.errors import CompactedError, TransientError
from zun_controller.store.kv import KV, EventType, KeyValue

log = logging.getLogger(__name__)
TOKENS = "/zun/tokens/"


@dataclass(frozen=True)
class Entry:
    """A token record as stored: its parsed form, its raw JSON and the revision it was read at."""

    digest: str
    record: TokenRecord
    raw: bytes
    mod_revision: int

    @classmethod
    def parse(cls, kv: KeyValue) -> Entry | None:
        try:
            record = TokenRecord.model_validate_json(kv.value)
        except ValidationError:
            log.warning("unreadable token record", extra={"key": kv.key})
            return None
        return cls(kv.key.removeprefix(TOKENS), record, kv.value, kv.mod_revision)


class TokenView:
    def __init__(
        self,
        kv: KV,
        *,
        retry: tuple[float, float] = (0.1, 5.0),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.kv = kv
        self._entries: dict[str, Entry] = {}
        self._synced = False
        self._retry = retry
        self._sleep = sleep
        #: set each time the view has listed and is watching (tests await it)
        self.ready = asyncio.Event()

    @property
    def synced(self) -> bool:
        """True while the view follows etcd; lookups are only trusted then."""
        return self._synced

    def get(self, digest: str) -> Entry | None:
        return self._entries.get(digest)

    async def run(self) -> None:
        """Until cancelled: list, then follow; list again whenever the watch is lost."""
        first, most = self._retry
        delay = first
        while True:
            try:
                start = await self._list()
                delay = first
                await self._follow(start)
            except (TransientError, CompactedError) as exc:
                log.info("token watch lost; listing again", extra={"error": str(exc)})
            except Exception:
                log.exception("token watch failed; listing again")
            finally:
                self._unsync()
            await self._sleep(delay)
            delay = min(delay * 2, most)

    def _unsync(self) -> None:
        self._synced = False
        self.ready.clear()

    async def _list(self) -> int:
        page = await self.kv.range(TOKENS)
        entries = (Entry.parse(kv) for kv in page.kvs)
        self._entries = {e.digest: e for e in entries if e is not None}
        return page.revision + 1

    async def _follow(self, start: int) -> None:
        self._synced = True
        self.ready.set()
        async for batch in self.kv.watch(TOKENS, start):
            for event in batch:
                digest = event.key.removeprefix(TOKENS)
                if event.type is EventType.DELETE:
                    self._entries.pop(digest, None)
                    continue
                kv = KeyValue(event.key, event.value, event.mod_revision, 0)
                if (entry := Entry.parse(kv)) is not None:
                    self._entries[digest] = entry
                else:
                    self._entries.pop(digest, None)
        raise TransientError("token watch ended")
