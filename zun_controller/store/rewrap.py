"""Storage migration of sealed values: what key ids are in use, and re-sealing under the newest.

- `census` counts the values under `SEALED_PREFIXES` by key id (`""` for plain values) and
  raises `DecryptionError` when some are sealed under ids this process cannot open, so a
  process with a missing or stale key file stops at start with the reason, not at first read.
- `rewrap` re-seals every value not yet under the key ring's newest key (plain ones too), as
  Kubernetes' storage migration rewrites every object after a key rotation. It reads in pages
  of at most `page` keys (memory bounded whatever the store holds), writes each page as one
  request of compare-and-swaps on the value's mod_revision (so a write that lands meanwhile is
  never lost: that value is read again and retried, at most `attempts` times), and calls
  `progress` after every page. The JSON inside is unchanged; each rewritten key gets a new
  mod_revision, as any write, so watchers see a modification with the same content.
- `rewrap(..., decrypt=True)` writes every value plain instead: the way back to a release that
  does not seal, run while no process with a key file writes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from zun_controller.errors import DecryptionError
from zun_controller.store.batch import MAX_BATCH
from zun_controller.store.encryption import SEALED_PREFIXES, Sealer, key_id_of
from zun_controller.store.kv import KV, KeyValue, Txn

#: tries per key when its value keeps changing under the rewrite
ATTEMPTS = 5


@dataclass
class RewrapSummary:
    #: the key every value ends under; "" for plain (a decrypting rewrap)
    key_id: str
    scanned: int = 0
    #: re-sealed from an older key (or, decrypting, written plain)
    rewrapped: int = 0
    #: sealed for the first time (they were plain)
    sealed_plain: int = 0
    #: already under the newest key
    current: int = 0
    #: still changing after every attempt (run again)
    conflicts: int = 0
    #: key ids found before rewriting ("" for plain values)
    before: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        return {
            "keyId": self.key_id or "(plain)",
            "scanned": self.scanned,
            "rewrapped": self.rewrapped,
            "sealedPlain": self.sealed_plain,
            "current": self.current,
            "conflicts": self.conflicts,
            "before": {k or "(plain)": n for k, n in sorted(self.before.items())},
        }


async def _pages(kv: KV, prefix: str, page: int) -> AsyncIterator[list[KeyValue]]:
    """The values under `prefix`, a page at a time (each page read at the current revision)."""
    start = prefix
    while True:
        got = await kv.range(prefix, start=start, limit=page)
        yield got.kvs
        if not got.more:
            return
        start = got.kvs[-1].key + "\0"


async def census(raw: KV, sealer: Sealer, page: int = 1000) -> Counter[str]:
    """Sealed values by key id ("" for plain) in the raw `raw` KV; `DecryptionError` if any
    is under an id that `sealer` cannot open."""
    ids: Counter[str] = Counter()
    for prefix in SEALED_PREFIXES:
        async for kvs in _pages(raw, prefix, page):
            ids.update(key_id_of(kv.value) or "" for kv in kvs)
    known = set(sealer.ring.ids) if sealer.ring else set()
    missing = sorted(i for i in ids if i and i not in known)
    if missing:
        found = ", ".join(f"{i!r} ({ids[i]} values)" for i in missing)
        fix = (
            "list those keys in --encryption-key-file (ZUN_ENCRYPTION_KEY_FILE)"
            if sealer.ring
            else "pass the key file with --encryption-key-file (ZUN_ENCRYPTION_KEY_FILE)"
        )
        raise DecryptionError(f"etcd holds credentials encrypted under key id {found}: {fix}")
    return ids


async def rewrap(
    raw: KV,
    sealer: Sealer,
    *,
    page: int = MAX_BATCH,
    decrypt: bool = False,
    progress: Callable[[RewrapSummary], None] = lambda _: None,
) -> RewrapSummary:
    """Re-seal every value under `SEALED_PREFIXES` of the raw (unwrapped) `raw` KV under the
    newest key of `sealer`'s ring (`decrypt`: write every value plain, for a rollback to a
    release that does not seal); returns what it found and did."""
    assert sealer.ring is not None, "rewrap needs a key ring"
    target = None if decrypt else sealer.ring.newest.id
    summary = RewrapSummary(target or "")
    page = max(1, min(page, MAX_BATCH))
    for prefix in SEALED_PREFIXES:
        async for kvs in _pages(raw, prefix, page):
            await _rewrap_page(raw, sealer, kvs, summary, target)
            progress(summary)
    return summary


async def _rewrap_page(
    raw: KV, sealer: Sealer, kvs: list[KeyValue], s: RewrapSummary, target: str | None
) -> None:
    s.scanned += len(kvs)
    s.before.update(key_id_of(kv.value) or "" for kv in kvs)
    stale = [kv for kv in kvs if key_id_of(kv.value) != target]
    s.current += len(kvs) - len(stale)
    for _ in range(ATTEMPTS):
        if not stale:
            return
        txns = [_resealed(sealer, kv, target is not None) for kv in stale]
        results = await raw.commit_many(txns)
        retry: list[KeyValue] = []
        for kv, result in zip(stale, results, strict=True):
            if result.succeeded:
                if key_id_of(kv.value) is None:
                    s.sealed_plain += 1
                else:
                    s.rewrapped += 1
                continue
            now = result.current.get(kv.key)
            if now is None:
                continue
            if key_id_of(now.value) == target:
                s.current += 1
            else:
                retry.append(now)
        stale = retry
    s.conflicts += len(stale)


def _resealed(sealer: Sealer, kv: KeyValue, seal: bool) -> Txn:
    value = sealer.open(kv.key, kv.value)
    if seal:
        value = sealer.seal(kv.key, value)
    return Txn(compares=[(kv.key, kv.mod_revision)], puts=[(kv.key, value)])
