"""Logs of and commands in a Container, through the `ContainerIO` port:
`GET …/projects/{project}/containers/{name}/log?follow=&tailLines=` (plain text, streamed) and
`POST …/projects/{project}/containers/{name}/exec` with `{"command": [...]}` ->
`{"exitCode": N, "output": "...", "truncated": false, "timedOut": false}`. Reading logs needs read
access; exec needs write access. A follow counts against the token's open streams and ends
after `ApiLimits.stream_timeout`; exec keeps `exec_output_bytes` of output (`truncated`) and
stops the command after `exec_timeout` (`timedOut`, exit code -1).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from zun_controller.api import access, openapi
from zun_controller.api.auth import Principal
from zun_controller.api.context import PREFIX, ApiContext, context, principal
from zun_controller.api.errors import ApiError
from zun_controller.api.io import ContainerIO
from zun_controller.api.limits import until
from zun_controller.models.base import Model
from zun_controller.models.container import Container

router = APIRouter(prefix=f"{PREFIX}/projects/{{project}}/containers/{{name}}")
Who = Annotated[Principal, Depends(principal)]


class ExecRequest(Model):
    command: list[str] = Field(min_length=1)


def _io(ctx: ApiContext) -> ContainerIO:
    if ctx.io is None:
        raise ApiError(503, "this API server has no access to container engines")
    return ctx.io


async def _running(ctx: ApiContext, project: str, name: str) -> Container:
    obj = await ctx.store.get(Container, name, project)
    if not obj.status.container_id or not obj.status.host:
        raise ApiError(
            409,
            f"container {project}/{name} has no engine container yet "
            f"({obj.status.phase or 'Pending'})",
        )
    return obj


_ERRORS = (401, 403, 404, 409, 422, 429, 503)
_LOG = {
    "200": {"description": "the log", "content": {"text/plain": {"schema": {"type": "string"}}}}
}


@router.get("/log", openapi_extra={"responses": {**_LOG, **openapi.errors(*_ERRORS)}})
async def logs(
    request: Request,
    who: Who,
    project: str,
    name: str,
    follow: bool = False,
    tailLines: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    access.check_project(who, project, write=False)
    ctx = context(request)
    obj = await _running(ctx, project, name)
    stream = _io(ctx).logs(obj, tail=tailLines, follow=follow)
    if follow:
        stream = ctx.slots.hold(who.name, until(stream, ctx.limits.stream_timeout))
        ctx.slots.take(who.name)
    return StreamingResponse(stream, media_type="text/plain")


class ExecResult(Model):
    exit_code: int
    output: str
    truncated: bool
    timed_out: bool


_EXEC_ERRORS = openapi.errors(*_ERRORS, 400, 413)


@router.post("/exec", response_model=ExecResult, openapi_extra={"responses": _EXEC_ERRORS})
async def exec_(
    request: Request, who: Who, project: str, name: str, body: ExecRequest
) -> dict[str, Any]:
    access.check_project(who, project, write=True)
    ctx = context(request)
    obj = await _running(ctx, project, name)
    limits = ctx.limits
    with ctx.exec_slots.held(who.name):
        done = await _io(ctx).exec(
            obj, body.command, max_output=limits.exec_output_bytes, max_seconds=limits.exec_timeout
        )
    return {
        "exitCode": done.exit_code,
        "output": done.output.decode(errors="replace"),
        "truncated": done.truncated,
        "timedOut": done.timed_out,
    }
