"""`/v1/containers/{id}/{action}`: imperative actions as writes of the record's spec, or as
calls through the API's `ContainerIO` port (logs, execute, top, stats).

start -> `spec.state: Running`; stop, kill -> `Stopped`; pause -> `Paused`; unpause ->
`Running`; reboot -> `spec.restartedAt` (the controller restarts the container once) and
`Running`; rename -> the Zun name; rebuild -> `spec.rebuiltAt` and, with `image`,
`spec.image` (the controller recreates the container). Each answers 202 at once, as Zun does;
the status follows when the controller converges. `logs` answers at most the newest
`ApiLimits.log_bytes` of at most `log_lines` lines; `execute` and `top` keep at most
`exec_output_bytes` and stop the command after `exec_timeout` (the output then ends with a
`[zun: output cut ...]` line).
"""

from __future__ import annotations

import collections
import shlex
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from zun_controller.api.context import ApiContext
from zun_controller.api.io import ContainerIO, ExecOutcome
from zun_controller.api.zunv1 import lookup, rules, view
from zun_controller.api.zunv1.auth import Caller, caller
from zun_controller.api.zunv1.containers import rename
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.registries import registry_ids
from zun_controller.models.container import Container, DesiredState

router = APIRouter(prefix="/containers/{ident}")
#: appended to an execute's output that was cut or stopped
CUT_MARK = "\n[zun: output cut at {0} bytes or command stopped after {1:g} s]\n"
Who = Annotated[Caller, Depends(caller)]
_STATE_ACTIONS = {
    "start": DesiredState.RUNNING,
    "stop": DesiredState.STOPPED,
    "kill": DesiredState.STOPPED,
    "pause": DesiredState.PAUSED,
    "unpause": DesiredState.RUNNING,
}


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.zun
    return ctx


def _io(ctx: ApiContext) -> ContainerIO:
    if ctx.io is None:
        raise ZunV1Error(503, "This API server has no access to container engines.")
    return ctx.io


def _accepted() -> Response:
    return Response(status_code=202)


async def _set_state(request: Request, who: Caller, ident: str, action: str) -> Response:
    def edit(obj: Container) -> None:
        rules.check(action, obj)
        obj.spec.state = _STATE_ACTIONS[action]

    await lookup.change(_ctx(request), who, ident, edit)
    return _accepted()


@router.post("/start", status_code=202)
async def start(request: Request, who: Who, ident: str) -> Response:
    return await _set_state(request, who, ident, "start")


@router.post("/stop", status_code=202)
async def stop(
    request: Request,
    who: Who,
    ident: str,
    grace: Annotated[int | None, Query(alias="timeout")] = None,
) -> Response:
    """`timeout` is accepted; the controller's own grace period applies."""
    return await _set_state(request, who, ident, "stop")


@router.post("/kill", status_code=202)
async def kill(request: Request, who: Who, ident: str, signal: str | None = None) -> Response:
    """Stops the container (SIGTERM, then SIGKILL after the grace period), whatever `signal`."""
    return await _set_state(request, who, ident, "kill")


@router.post("/pause", status_code=202)
async def pause(request: Request, who: Who, ident: str) -> Response:
    return await _set_state(request, who, ident, "pause")


@router.post("/unpause", status_code=202)
async def unpause(request: Request, who: Who, ident: str) -> Response:
    return await _set_state(request, who, ident, "unpause")


@router.post("/rename")
async def rename_(request: Request, who: Who, ident: str, name: str) -> Any:
    def edit(obj: Container) -> None:
        rules.check("rename", obj)
        rename(obj, name)

    obj = await lookup.change(_ctx(request), who, ident, edit)
    return view.container(obj, request, await registry_ids(_ctx(request), obj.project))


def _later(*times: datetime | None) -> datetime:
    """Now, or just after the latest of `times` when this server's clock is behind the one that
    wrote them: a new request is always newer than those before it."""
    now, latest = datetime.now(UTC), max((t for t in times if t is not None), default=None)
    return now if latest is None or now > latest else latest + timedelta(microseconds=1)


@router.post("/rebuild", status_code=202)
async def rebuild(request: Request, who: Who, ident: str, image: str | None = None) -> Response:
    """A rebuild request (`spec.rebuiltAt`, in the config hash: the controller recreates the
    container), with `image` as its new image if given."""

    def edit(obj: Container) -> None:
        rules.check("rebuild", obj)
        if image:
            obj.spec.image = image
        obj.spec.rebuilt_at = _later(obj.spec.rebuilt_at)

    await lookup.change(_ctx(request), who, ident, edit)
    return _accepted()


@router.post("/reboot", status_code=202)
async def reboot(
    request: Request,
    who: Who,
    ident: str,
    grace: Annotated[int | None, Query(alias="timeout")] = None,
) -> Response:
    """A restart request (`spec.restartedAt`) and `Running`, so a stopped container is started,
    as upstream's reboot does. `timeout` is accepted; the controller's grace period applies."""

    def edit(obj: Container) -> None:
        rules.check("reboot", obj)
        obj.spec.state = DesiredState.RUNNING
        obj.spec.restarted_at = _later(obj.spec.restarted_at, obj.status.restarted_at)

    await lookup.change(_ctx(request), who, ident, edit)
    return _accepted()


@router.get("/stats")
async def stats(request: Request, who: Who, ident: str) -> dict[str, Any]:
    """What the engine reports now for the container (a running one, as upstream)."""
    ctx = _ctx(request)
    obj = await lookup.find(ctx, who, ident)
    rules.check("stats", obj)
    return view.stats(obj, await _io(ctx).stats(obj))


@router.get("/logs")
async def logs(
    request: Request,
    who: Who,
    ident: str,
    tail: str | None = None,
    stdout: str | None = None,
    stderr: str | None = None,
    timestamps: str | None = None,
    since: str | None = None,
) -> JSONResponse:
    """stdout and stderr together (the port does not split them); `tail` is a count or all."""
    ctx = _ctx(request)
    obj = await lookup.find(ctx, who, ident)
    rules.check("logs", obj)
    lines = None if tail in (None, "", "all") else _count(tail)
    if not obj.status.container_id:
        return JSONResponse("")
    return JSONResponse(await _bounded_log(ctx, obj, lines))


async def _bounded_log(ctx: ApiContext, obj: Container, lines: int | None) -> str:
    """The newest `limits.log_bytes` of at most `limits.log_lines` lines: never the whole log."""
    limits = ctx.limits
    asked = limits.log_lines if lines is None else min(lines, limits.log_lines)
    kept, size = collections.deque[bytes](), 0
    async for chunk in _io(ctx).logs(obj, tail=asked, follow=False):
        kept.append(chunk)
        size += len(chunk)
        while size > limits.log_bytes and len(kept) > 1:
            size -= len(kept.popleft())
    data = b"".join(kept)[-limits.log_bytes :]
    return data.decode(errors="replace")


def _count(value: str) -> int:
    if not value.isdigit():
        raise ZunV1Error(400, f"Invalid tail {value!r}: a number of lines or all")
    return int(value)


@router.post("/execute")
async def execute(
    request: Request,
    who: Who,
    ident: str,
    command: Annotated[str, Query(min_length=1)],
    run: str = "true",
    interactive: str = "false",
) -> dict[str, Any]:
    if run.lower() not in ("true", "1") or interactive.lower() in ("true", "1"):
        raise ZunV1Error(501, "interactive exec (run=false) needs a websocket proxy: not served")
    who.check_write()
    ctx = _ctx(request)
    obj = await lookup.find(ctx, who, ident)
    rules.check("execute", obj)
    done = await _exec(ctx, who, obj, shlex.split(command))
    text = done.output.decode(errors="replace")
    if done.truncated or done.timed_out:
        text += CUT_MARK.format(ctx.limits.exec_output_bytes, ctx.limits.exec_timeout)
    return {"output": text, "exit_code": done.exit_code, "exec_id": None, "proxy_url": None}


async def _exec(ctx: ApiContext, who: Caller, obj: Container, command: list[str]) -> ExecOutcome:
    limits = ctx.limits
    with ctx.exec_slots.held(who.principal.name):
        return await _io(ctx).exec(
            obj, command, max_output=limits.exec_output_bytes, max_seconds=limits.exec_timeout
        )


@router.get("/top")
async def top(request: Request, who: Who, ident: str, ps_args: str | None = None) -> Any:
    """`ps` run inside the container (the port has no engine-side top): it runs a process, so
    it needs write rights, as execute does."""
    who.check_write()
    ctx = _ctx(request)
    obj = await lookup.find(ctx, who, ident)
    rules.check("top", obj)
    done = await _exec(ctx, who, obj, ["ps", *(shlex.split(ps_args or ""))])
    code, output = done.exit_code, done.output
    if code != 0:
        raise ZunV1Error(501, "top needs ps inside the container image")
    rows = [line.split(None, 3) for line in output.decode(errors="replace").splitlines() if line]
    return {"Titles": rows[0] if rows else [], "Processes": rows[1:]}
