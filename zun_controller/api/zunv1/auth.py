"""Who calls the Zun v1 API, and in which project.

Keystone is not here. A caller sends `X-Auth-Token` carrying one of this API's own tokens
(checked as the REST API checks its bearer tokens; `Authorization: Bearer` works too). The
project is `X-Project-Id` when sent (it must be one of the token's), else the token's first
project, else (an admin token, which has none) the configured default project.

No-auth mode (`ZunV1Settings.noauth`, off by default; `ZUN_V1_NOAUTH=1` in the server's
environment): a request without a token acts as a member of the configured project
(`ZUN_V1_PROJECT`, default `default`), as keystoneauth's `none` plugin expects of a local
endpoint (which sends the placeholder token `notused`: in this mode a token that is not one of
ours, by its `zun_` prefix, is ignored). A request that carries one of our tokens is still
checked. The mode serves loopback addresses only and refuses requests from web pages
(`noauth.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from zun_controller.api.auth import Principal, Role
from zun_controller.api.context import ApiContext
from zun_controller.api.zunv1.errors import ZunV1Error

TOKEN_PREFIX = "zun_"


@dataclass(frozen=True)
class ZunV1Settings:
    noauth: bool = False
    project: str = "default"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ZunV1Settings:
        flag = env.get("ZUN_V1_NOAUTH", "").strip().lower()
        return cls(
            noauth=flag in ("1", "true", "yes", "on"),
            project=env.get("ZUN_V1_PROJECT", "").strip() or "default",
        )


@dataclass(frozen=True)
class Caller:
    principal: Principal
    project: str

    def check_write(self) -> None:
        if not self.principal.can_write(self.project):
            raise ZunV1Error(
                403,
                f"Policy doesn't allow this: token {self.principal.name!r} "
                f"({self.principal.role}) may not write in project {self.project!r}",
            )

    def check_admin(self, what: str) -> None:
        if not self.principal.admin:
            raise ZunV1Error(403, f"Policy doesn't allow {what} to be performed.")


def _token(request: Request) -> str | None:
    token = request.headers.get("x-auth-token")
    if token:
        return token.strip()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _project(principal: Principal, asked: str | None, default: str) -> str:
    if asked:
        if not principal.can_read(asked):
            raise ZunV1Error(403, f"token {principal.name!r} may not act in project {asked!r}")
        return asked
    if principal.projects:
        return sorted(principal.projects)[0]
    return default


async def caller(request: Request) -> Caller:
    """The caller of a request (401 without a valid token unless no-auth mode is on)."""
    ctx: ApiContext = request.app.state.zun
    settings: ZunV1Settings = request.app.state.zunv1
    token = _token(request)
    if settings.noauth and token is not None and not token.startswith(TOKEN_PREFIX):
        token = None  # keystoneauth's `none` plugin sends the placeholder "notused"
    if token is None and settings.noauth:
        who = Principal("noauth", Role.MEMBER, frozenset({settings.project}))
    elif token is None or not token.startswith(TOKEN_PREFIX):
        raise ZunV1Error(
            401, "Authentication required: send X-Auth-Token with one of this API's zun_ tokens"
        )
    else:
        who = await ctx.tokens.authenticate(f"Bearer {token}")
    asked = request.headers.get("x-project-id")
    project = _project(who, asked, settings.project)
    if not who.can_read(project):
        raise ZunV1Error(403, f"token {who.name!r} may not act in project {project!r}")
    return Caller(who, project)
