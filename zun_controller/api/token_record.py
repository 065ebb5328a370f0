"""What etcd keeps of one API token (`TokenRecord`, the value of `/zun/tokens/<sha-256 hex>`),
and token lifetimes (`lifetime`, `DEFAULT_LIFETIME`).

A record is JSON: `name`, `role`, `projects`, and, for tokens made since lifetimes exist,
`createdAt`, `expiresAt` (absent: the token never expires) and `lastUsedAt`. Those three are
left out while unset, so a record stays what the release before them wrote and reads; that
release ignores fields it does not know, and so does `TokenRecord` (a newer release's field
never makes a token unreadable here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from zun_controller.models.base import at_default

#: a token's lifetime when its maker does not say (`ZUN_TOKEN_LIFETIME` changes it)
DEFAULT_LIFETIME = timedelta(days=90)
#: the longest lifetime one may ask for; beyond it, say `never`
MAX_LIFETIME = timedelta(days=3650)
NEVER = "never"
_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Default(Enum):
    """The lifetime of a token whose maker gives none: the process's default."""

    LIFETIME = "default"


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    READER = "reader"


class TokenRecord(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    role: Role
    projects: list[str] = Field(default_factory=list)
    created_at: datetime | None = Field(default=None, exclude_if=at_default)
    #: None: never expires (asked for explicitly, or made before lifetimes existed)
    expires_at: datetime | None = Field(default=None, exclude_if=at_default)
    #: the latest request seen with it, to the minute (api/token_usage.py)
    last_used_at: datetime | None = Field(default=None, exclude_if=at_default)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def listed(self) -> dict[str, object]:
        """What a listing shows: everything but the secret (which etcd does not have)."""
        return self.model_dump(mode="json", by_alias=True)


#: when a token with no createdAt (made before lifetimes existed) sorts
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lifetime(text: str, *, allow_never: bool = True) -> timedelta | None:
    """`90d`, `12h`, `1h30m`, `2s`, or `never` (None; refused unless `allow_never`): a
    ValueError saying what is accepted otherwise."""
    value = text.strip().lower()
    if value == NEVER:
        if not allow_never:
            raise ValueError("'never' is asked for per token, not as a default")
        return None
    if not value or _PART.sub("", value):
        raise ValueError(f"{text!r} is not a lifetime: say e.g. 90d, 12h, 30m, 1h30m, or never")
    total = timedelta()
    try:
        for amount, unit in _PART.findall(value):
            total += timedelta(**{_UNITS[unit]: int(amount)})
    except OverflowError:
        total = MAX_LIFETIME * 2
    if total <= timedelta() or total > MAX_LIFETIME:
        raise ValueError(f"{text!r}: a lifetime is from 1s to {MAX_LIFETIME.days}d, or never")
    return total


def default_lifetime(env: Mapping[str, str]) -> timedelta:
    """`ZUN_TOKEN_LIFETIME` (not `never`: that is asked for per token), else
    `DEFAULT_LIFETIME`; a ValueError naming the variable when it is bad."""
    raw = env.get("ZUN_TOKEN_LIFETIME", "").strip()
    if not raw:
        return DEFAULT_LIFETIME
    try:
        found = lifetime(raw, allow_never=False)
    except ValueError as exc:
        raise ValueError(f"ZUN_TOKEN_LIFETIME: {exc}") from None
    assert found is not None
    return found
