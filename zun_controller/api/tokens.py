"""`/apis/zun.openstack.org/v1alpha1/tokens`: admins make tokens (shown in clear once, with
a lifetime: `lifetime` in the body, the server's default without it, `never` only when asked
for), list them (names, roles, projects and times; never secrets or digests) and revoke them by
name (`DELETE …/tokens/{name}`: every token of that name). Any other caller may revoke the
token it calls with, and only that one."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from zun_controller.api import openapi
from zun_controller.api.auth import Principal, Role, bearer, digest
from zun_controller.api.context import PREFIX, context, principal
from zun_controller.api.errors import ApiError
from zun_controller.api.token_record import Default, lifetime
from zun_controller.errors import FieldError
from zun_controller.models.base import DNSLabel, Model

router = APIRouter(prefix=PREFIX)
Who = Annotated[Principal, Depends(principal)]


class TokenRequest(Model):
    name: DNSLabel
    role: Role
    projects: list[DNSLabel] = Field(default_factory=list)
    #: `90d`, `12h`, `1h30m`, `2s`, or `never`; the server's default when absent
    lifetime: str | None = None


def _admin(who: Principal) -> None:
    if not who.admin:
        raise ApiError(403, f"token {who.name!r} ({who.role}) may not manage tokens")


def _lifetime(body: TokenRequest) -> timedelta | Default | None:
    if body.lifetime is None:
        return Default.LIFETIME
    try:
        return lifetime(body.lifetime)
    except ValueError as exc:
        message = f"lifetime: {exc}"
        raise ApiError(422, message, causes=[FieldError("lifetime", str(exc))]) from None


_CREATE_ERRORS = openapi.errors(400, 401, 403, 413, 422, 503)


@router.post("/tokens", status_code=201, openapi_extra={"responses": _CREATE_ERRORS})
async def create_token(request: Request, who: Who, body: TokenRequest) -> JSONResponse:
    _admin(who)
    if body.role is not Role.ADMIN and not body.projects:
        raise ApiError(422, "projects: a member or reader token needs at least one project")
    tokens = context(request).tokens
    record = tokens.record(body.name, body.role, body.projects, lifetime=_lifetime(body))
    token = await tokens.put(record)
    return JSONResponse({**record.listed(), "token": token}, status_code=201)


@router.get("/tokens", openapi_extra={"responses": openapi.errors(401, 403, 503)})
async def list_tokens(request: Request, who: Who) -> dict[str, Any]:
    _admin(who)
    return {"items": await context(request).tokens.list()}


@router.delete("/tokens/{name}", openapi_extra={"responses": openapi.errors(401, 403, 404, 503)})
async def revoke_token(request: Request, who: Who, name: str) -> dict[str, Any]:
    """Admins revoke every token named `name` (404 when there is none); any other caller
    only the token it calls with (403 for another name, whether or not it exists)."""
    tokens = context(request).tokens
    if who.admin:
        revoked = await tokens.revoke(name)
        if not revoked:
            raise ApiError(404, f"no token named {name!r}")
    elif name == who.name:
        own = digest(bearer(request.headers.get("authorization")))
        revoked = await tokens.revoke(name, only=own)
    else:
        raise ApiError(403, f"token {who.name!r} ({who.role}) may revoke only itself")
    return {"name": name, "revoked": revoked}
