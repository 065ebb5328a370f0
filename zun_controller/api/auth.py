"""API tokens and roles.

A token is `zun_` + 32 random bytes (urlsafe base64), shown in clear once, when it is made. etcd
keeps only its SHA-256, as the key `/zun/tokens/<hex digest>`, whose value names the token, its
role and its projects; a process keeps a token it has seen for 5 s, so a token deleted from
etcd stops working within that. Roles: `admin` (everything, every project), `member` (read
and write in its projects), `reader` (read in its projects).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum

from zun_controller.api.errors import ApiError
from zun_controller.store.kv import KV, Txn

TOKENS = "/zun/tokens/"


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    READER = "reader"


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


class Tokens:
    """Tokens in etcd, by digest."""

    def __init__(self, kv: KV, *, cache_seconds: float = 5.0) -> None:
        self.kv = kv
        #: digest -> (principal, until): known tokens are not read from etcd on every request
        self._known: dict[str, tuple[Principal, float]] = {}
        self._cache_seconds = cache_seconds

    async def create(self, name: str, role: Role, projects: list[str]) -> str:
        """A new token; the clear text is returned here and never stored."""
        token = "zun_" + secrets.token_urlsafe(32)
        value = json.dumps({"name": name, "role": role.value, "projects": sorted(projects)})
        key = TOKENS + digest(token)
        await self.kv.commit(Txn(compares=[(key, 0)], puts=[(key, value.encode())]))
        return token

    async def authenticate(self, header: str | None) -> Principal:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "missing bearer token: send 'Authorization: Bearer TOKEN'")
        key = digest(token.strip())
        known = self._known.get(key)
        if known and known[1] > time.monotonic():
            return known[0]
        found = await self.kv.get(TOKENS + key)
        if found is None:
            raise ApiError(401, "invalid or revoked token")
        data = json.loads(found.value)
        who = Principal(data["name"], Role(data["role"]), frozenset(data["projects"]))
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[key] = (who, time.monotonic() + self._cache_seconds)
        return who

    async def list(self) -> list[dict[str, object]]:
        """Every token's name, role and projects (never the digest)."""
        page = await self.kv.range(TOKENS)
        out: list[dict[str, object]] = [json.loads(kv.value) for kv in page.kvs]
        return sorted(out, key=lambda t: str(t["name"]))

    async def any_admin(self) -> bool:
        return any(t["role"] == Role.ADMIN.value for t in await self.list())
