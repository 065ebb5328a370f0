"""API tokens and roles.

A token is `zun_` + 32 random bytes (urlsafe base64), shown in clear once, when it is made. etcd
keeps only its SHA-256, as the key `/zun/tokens/<hex digest>`, whose value (`TokenRecord`)
names the token, its role, its projects and when it expires. Roles: `admin` (everything, every
project), `member` (read and write in its projects), `reader` (read in its projects).

A request's token is looked up by digest in the process's `TokenView` (a watch of etcd) while
it follows etcd, and read from etcd otherwise (and when the view does not know it yet, as just
after it was made through another replica): a revoked token, whose key is gone, is refused by
every replica as soon as the deletion reaches it. Expiry is checked on every request against
the clock. Names need not be unique: revoking a name revokes every token of that name.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zun_controller.api.errors import ApiError
from zun_controller.api.token_record import (
    DEFAULT_LIFETIME,
    EPOCH,
    Default,
    Role,
    TokenRecord,
    now_utc,
    rfc3339,
)
from zun_controller.api.token_usage import UsageWriter
from zun_controller.api.token_view import TOKENS, Entry, TokenView
from zun_controller.store.kv import KV, Txn

__all__ = ["TOKENS", "Principal", "Role", "Tokens", "digest"]
#: deletes per etcd transaction (etcd's default --max-txn-ops is 128)
REVOKE_BATCH = 100


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    projects: frozenset[str] = field(default_factory=frozenset)

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_read(self, project: str) -> bool:
        return self.admin or project in self.projects

    def can_write(self, project: str) -> bool:
        return self.admin or (self.role is Role.MEMBER and project in self.projects)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer TOKEN` header (401 without one)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token: send 'Authorization: Bearer TOKEN'")
    return token.strip()


def _principal(record: TokenRecord) -> Principal:
    return Principal(record.name, record.role, frozenset(record.projects))


class Tokens:
    """Tokens in etcd, by digest. `view.run()` and `usage.run()` run as tasks for the app's
    lifetime (api/app.py); without them every request reads etcd and no usage is written."""

    def __init__(
        self,
        kv: KV,
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
        now: Callable[[], datetime] = now_utc,
    ) -> None:
        self.kv = kv
        #: the lifetime of a token whose maker does not give one
        self.lifetime = lifetime
        self.now = now
        self.view = TokenView(kv)
        self.usage = UsageWriter(kv)

    async def create(
        self,
        name: str,
        role: Role,
        projects: list[str],
        *,
        lifetime: timedelta | Default | None = Default.LIFETIME,
    ) -> str:
        """A new token; the clear text is returned here and never stored. `lifetime` None:
        it never expires; `Default.LIFETIME`: `self.lifetime`."""
        return await self.put(self.record(name, role, projects, lifetime=lifetime))

    async def put(self, record: TokenRecord) -> str:
        """A new token for `record`; the clear text is returned here and never stored."""
        token = "zun_" + secrets.token_urlsafe(32)
        key = TOKENS + digest(token)
        await self.kv.commit(Txn(compares=[(key, 0)], puts=[(key, record.to_json())]))
        return token

    def record(
        self, name: str, role: Role, projects: list[str], *, lifetime: timedelta | Default | None
    ) -> TokenRecord:
        now = self.now().replace(microsecond=0)
        ttl = self.lifetime if lifetime is Default.LIFETIME else lifetime
        expires = None if ttl is None else now + ttl
        return TokenRecord(
            name=name, role=role, projects=sorted(projects), created_at=now, expires_at=expires
        )

    async def authenticate(self, header: str | None) -> Principal:
        key = digest(bearer(header))
        entry = await self._lookup(key)
        if entry is None:
            raise ApiError(
                401, "unknown or revoked token: ask an admin for a new one (`zun-controller token`)"
            )
        now = self.now()
        if entry.record.expired(now):
            assert entry.record.expires_at is not None
            when = rfc3339(entry.record.expires_at)
            raise ApiError(
                401, f"token expired at {when}: make a new one with `zun-controller token`"
            )
        self.usage.seen(entry, now)
        return _principal(entry.record)

    async def _lookup(self, key: str) -> Entry | None:
        if self.view.synced and (entry := self.view.get(key)) is not None:
            return entry
        found = await self.kv.get(TOKENS + key)
        return None if found is None else Entry.parse(found)

    async def entries(self) -> list[Entry]:
        """Every token record as etcd has it now, by name then creation."""
        page = await self.kv.range(TOKENS)
        found = [e for kv in page.kvs if (e := Entry.parse(kv)) is not None]
        return sorted(found, key=lambda e: (e.record.name, e.record.created_at or EPOCH))

    async def list(self) -> list[dict[str, object]]:
        """Every token's name, role, projects and times (never a secret or a digest)."""
        return [e.record.listed() for e in await self.entries()]

    async def revoke(self, name: str, *, only: str | None = None) -> int:
        """Delete every token named `name` (or only the one with digest `only`); how many went.
        Its key is gone from etcd at once, so no replica accepts it once the deletion reaches
        its view."""
        gone = [
            TOKENS + e.digest
            for e in await self.entries()
            if e.record.name == name and (only is None or e.digest == only)
        ]
        for start in range(0, len(gone), REVOKE_BATCH):
            await self.kv.commit(Txn(deletes=gone[start : start + REVOKE_BATCH]))
        return len(gone)

    async def any_admin(self) -> bool:
        """Whether an admin token that has not expired exists."""
        now = self.now()
        return any(
            e.record.role is Role.ADMIN and not e.record.expired(now) for e in await self.entries()
        )
