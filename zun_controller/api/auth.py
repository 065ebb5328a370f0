"""API tokens and roles.

A token is `zun_` + 32 random bytes (urlsafe base64), shown in clear once, when it is made. etcd
keeps only its SHA-256, as the key `/zun/tokens/<hex digest>`, whose value names the token, its
role and its projects. Roles: `admin` (everything, every project), `member` (read and write in
its projects), `reader` (read in its projects).
"""

from __future__ import annotations

import hashlib
import json
import secrets
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

    def __init__(self, kv: KV) -> None:
        self.kv = kv

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
        found = await self.kv.get(TOKENS + digest(token.strip()))
        if found is None:
            raise ApiError(401, "invalid or revoked token")
        data = json.loads(found.value)
        return Principal(data["name"], Role(data["role"]), frozenset(data["projects"]))

    async def list(self) -> list[dict[str, object]]:
        """Every token's name, role and projects (never the digest)."""
        page = await self.kv.range(TOKENS)
        out: list[dict[str, object]] = [json.loads(kv.value) for kv in page.kvs]
        return sorted(out, key=lambda t: str(t["name"]))

    async def any_admin(self) -> bool:
        return any(t["role"] == Role.ADMIN.value for t in await self.list())
