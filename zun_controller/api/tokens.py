"""`/apis/zun.openstack.org/v1alpha1/tokens`: admins make tokens (shown in clear once) and list
them (names, roles, projects; never secrets or digests)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from zun_controller.api import openapi
from zun_controller.api.auth import Principal, Role
from zun_controller.api.context import PREFIX, context, principal
from zun_controller.api.errors import ApiError
from zun_controller.models.base import DNSLabel, Model

router = APIRouter(prefix=PREFIX)
Who = Annotated[Principal, Depends(principal)]


class TokenRequest(Model):
    name: DNSLabel
    role: Role
    projects: list[DNSLabel] = Field(default_factory=list)


def _admin(who: Principal) -> None:
    if not who.admin:
        raise ApiError(403, f"token {who.name!r} ({who.role}) may not manage tokens")


_CREATE_ERRORS = openapi.errors(400, 401, 403, 413, 422, 503)


@router.post("/tokens", status_code=201, openapi_extra={"responses": _CREATE_ERRORS})
async def create_token(request: Request, who: Who, body: TokenRequest) -> JSONResponse:
    _admin(who)
    if body.role is not Role.ADMIN and not body.projects:
        raise ApiError(422, "projects: a member or reader token needs at least one project")
    token = await context(request).tokens.create(body.name, body.role, body.projects)
    data = {**body.model_dump(mode="json"), "token": token}
    return JSONResponse(data, status_code=201)


@router.get("/tokens", openapi_extra={"responses": openapi.errors(401, 403, 503)})
async def list_tokens(request: Request, who: Who) -> dict[str, Any]:
    _admin(who)
    return {"items": await context(request).tokens.list()}
