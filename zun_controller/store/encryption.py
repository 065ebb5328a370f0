"""Credentials at rest: the values of credential-holding kinds sealed with AES-256-GCM in etcd.

- What: every value under `SEALED_PREFIXES` (Secrets, PullSecrets, GitSecrets: kubeconfigs,
  TLS keys, registry passwords, git passwords and ssh keys). Other kinds hold no credentials
  (tokens are stored as SHA-256 digests, Hosts name TLS files by path) and stay plain JSON.
- How: a sealed value is `zun:enc:aesgcm:v1:<key id>:` + a random 96-bit nonce + the AES-GCM
  ciphertext and tag of the JSON record. The associated data is the etcd key, so a value
  copied onto another record's key fails authentication instead of being read as that record.
- Keys (store/keyfile.py): the key ring's newest key seals; any listed key opens. A value that
  is not sealed (written before encryption was on, or by hand) is read as it is, and sealed by
  its next write or by `rewrap`.
- Failures: a sealed value read without a key ring, under a key id the ring lacks, or failing
  authentication is a `DecryptionError` naming the etcd key, the key id and what to do.
- Revisions: the wrapper changes values only, so mod_revision, resourceVersion, compares and
  watches are etcd's own.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zun_controller.errors import DecryptionError
from zun_controller.models.application import Secret
from zun_controller.models.gitsecret import GitSecret
from zun_controller.models.pullsecret import PullSecret
from zun_controller.store.keyfile import KeyRing
from zun_controller.store.keys import kind_prefix
from zun_controller.store.kv import KV, EventType, KeyValue, KVEvent, RangeResult, Txn, TxnResult

MAGIC = b"zun:enc:aesgcm:v1:"
NONCE_BYTES = 12
#: etcd key prefixes whose values are sealed
SEALED_PREFIXES: tuple[str, ...] = tuple(
    kind_prefix(k.KIND) for k in (Secret, PullSecret, GitSecret)
)


def is_sealed_key(key: str) -> bool:
    return key.startswith(SEALED_PREFIXES)


def key_id_of(value: bytes) -> str | None:
    """The key id a stored value is sealed under; None for a plain value."""
    if not value.startswith(MAGIC):
        return None
    key_id, sep, _ = value[len(MAGIC) :].partition(b":")
    return key_id.decode(errors="replace") if sep else ""


class Sealer:
    """Seals and opens values of one etcd key; `ring` None seals nothing (plain values)."""

    def __init__(self, ring: KeyRing | None) -> None:
        self.ring = ring
        self._aead = {k.id: AESGCM(k.secret) for k in ring.keys} if ring else {}

    def seal(self, key: str, plain: bytes) -> bytes:
        if self.ring is None:
            return plain
        newest = self.ring.newest.id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[newest].encrypt(nonce, plain, key.encode())
        return MAGIC + newest.encode() + b":" + nonce + sealed

    def open(self, key: str, stored: bytes) -> bytes:
        key_id = key_id_of(stored)
        if key_id is None:
            return stored
        if self.ring is None:
            raise DecryptionError(
                f"{key} is encrypted (key id {key_id!r}) and this process has no key file: "
                "pass --encryption-key-file (ZUN_ENCRYPTION_KEY_FILE)"
            )
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(
                f"{key} is encrypted under key id {key_id!r}, which the key file does not list "
                f"(it lists {', '.join(self.ring.ids)}): add that key back"
            )
        body = stored[len(MAGIC) + len(key_id) + 1 :]
        try:
            return aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], key.encode())
        except InvalidTag:
            raise DecryptionError(
                f"{key}: the value under key id {key_id!r} fails authentication: it was "
                "sealed for another key or with another secret of that id, or was altered"
            ) from None


class SealingKV:
    """A `KV` that seals the values of credential kinds on write and opens them on read."""

    def __init__(self, kv: KV, sealer: Sealer) -> None:
        self.inner = kv
        self.sealer = sealer

    def _seal(self, key: str, value: bytes) -> bytes:
        return self.sealer.seal(key, value) if is_sealed_key(key) else value

    def _open(self, key: str, value: bytes) -> bytes:
        return self.sealer.open(key, value) if is_sealed_key(key) and value else value

    def _open_kv(self, kv: KeyValue) -> KeyValue:
        return replace(kv, value=self._open(kv.key, kv.value)) if is_sealed_key(kv.key) else kv

    def _open_current(self, result: TxnResult) -> TxnResult:
        if not result.current:
            return result
        current = {k: v and self._open_kv(v) for k, v in result.current.items()}
        return replace(result, current=current)

    def _sealed(self, txn: Txn) -> Txn:
        return replace(txn, puts=[(k, self._seal(k, v)) for k, v in txn.puts])

    async def get(self, key: str) -> KeyValue | None:
        found = await self.inner.get(key)
        return found and self._open_kv(found)

    async def range(
        self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0
    ) -> RangeResult:
        page = await self.inner.range(prefix, start=start, limit=limit, revision=revision)
        return replace(page, kvs=[self._open_kv(kv) for kv in page.kvs])

    async def commit(self, txn: Txn) -> TxnResult:
        return self._open_current(await self.inner.commit(self._sealed(txn)))

    async def commit_many(self, txns: Sequence[Txn]) -> list[TxnResult]:
        results = await self.inner.commit_many([self._sealed(t) for t in txns])
        return [self._open_current(r) for r in results]

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[KVEvent]]:
        events = self.inner.watch(prefix, start_revision)
        try:
            async for batch in events:
                yield [self._open_event(e) for e in batch]
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    def _open_event(self, event: KVEvent) -> KVEvent:
        if event.type is EventType.DELETE or not is_sealed_key(event.key):
            return event
        return replace(event, value=self._open(event.key, event.value))

    async def delete_prefix(self, prefix: str) -> int:
        return await self.inner.delete_prefix(prefix)

    async def revision(self) -> int:
        return await self.inner.revision()

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)

    async def grant_lease(self, ttl: int) -> int:
        return await self.inner.grant_lease(ttl)

    async def keep_alive(self, lease: int) -> int:
        return await self.inner.keep_alive(lease)

    async def revoke_lease(self, lease: int) -> None:
        await self.inner.revoke_lease(lease)

    async def close(self) -> None:
        await self.inner.close()
