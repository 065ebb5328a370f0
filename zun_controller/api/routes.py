"""The resource paths of DESIGN.md "Interfaces": one set of routes per registered kind.

Project-scoped kinds: `{PREFIX}/projects/{project}/{plural}[/{name}[/status]]`, and, read-only,
`{PREFIX}/{plural}` (a list across the caller's projects). Cluster-scoped kinds:
`{PREFIX}/{plural}[/{name}[/status]]`. Every path is a literal plural, so a cluster-scoped
record's `/status` (`…/projects/{name}/status` of a Project) is a route of its own, and each
operation is documented with the kind's own model (api/openapi.py). A method a path does not
take, and a path no route has, are api/fallback.py's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from zun_controller.api import access, crud, deletion, openapi
from zun_controller.api.auth import Principal
from zun_controller.api.context import PREFIX, context, principal
from zun_controller.api.watch import Watch
from zun_controller.models.base import Resource, Scope
from zun_controller.models.registry import kinds

router = APIRouter(prefix=PREFIX)
Who = Annotated[Principal, Depends(principal)]
Obj = dict[str, Any]
NDJSON = "application/x-ndjson"
#: etcd revisions are signed 64-bit and a watch starts at `resourceVersion` + 1
MAX_WATCH_REVISION = 2**63 - 2


def _params(
    labelSelector: str | None = None,
    fieldSelector: str | None = None,
    limit: Annotated[int, Query(ge=0, le=10000)] = 0,
    continue_: Annotated[str | None, Query(alias="continue")] = None,
    watch: bool = False,
    resourceVersion: Annotated[int, Query(ge=0, le=MAX_WATCH_REVISION)] = 0,
    timeoutSeconds: Annotated[float | None, Query(gt=0, le=3600)] = None,
) -> Obj:
    return {
        "labelSelector": labelSelector,
        "fieldSelector": fieldSelector,
        "limit": limit,
        "continue": continue_,
        "watch": watch,
        "resourceVersion": resourceVersion,
        "timeoutSeconds": timeoutSeconds,
    }


Params = Annotated[Obj, Depends(_params)]


async def _project_path(project: str) -> None:
    """Declares the `{project}` path parameter; handlers read it from the request."""


def _delete_options(
    propagationPolicy: Annotated[
        str | None,
        Query(json_schema_extra={"enum": [p.value for p in deletion.PropagationPolicy]}),
    ] = None,
    resourceVersion: str | None = None,
) -> None:
    """Declares DELETE's query parameters; api/deletion.py reads and checks them."""


def _project(request: Request) -> str | None:
    project: str | None = request.path_params.get("project")
    return project


async def _list(
    request: Request, who: Principal, cls: type[Resource], project: str | None, params: Obj
) -> Any:
    access.check(who, cls, project, None, write=False)
    ctx = context(request)
    if params.get("watch"):
        stream = Watch(ctx, who, cls, project, params).stream()
        ctx.slots.take(who.name)
        return StreamingResponse(ctx.slots.hold(who.name, stream), media_type=NDJSON)
    return await crud.listed(ctx, who, cls, project, params)


async def _create(request: Request, who: Principal, cls: type[Resource]) -> JSONResponse:
    project = _project(request)
    access.check(who, cls, project, None, write=True)
    ctx = context(request)
    obj = await crud.create(ctx, who, cls, project, await crud.body_of(request))
    return JSONResponse(await crud.shown(ctx, obj), status_code=201)


async def _get(request: Request, who: Principal, cls: type[Resource], name: str) -> Obj:
    project = _project(request)
    access.check(who, cls, project, name, write=False)
    ctx = context(request)
    return await crud.shown(ctx, await ctx.store.get(cls, name, project))


async def _write(request: Request, who: Principal, cls: type[Resource], name: str) -> Obj:
    project = _project(request)
    access.check(who, cls, project, name, write=True)
    ctx = context(request)
    if request.method == "PUT":
        obj = await crud.replace(ctx, who, cls, project, name, await crud.body_of(request))
    elif request.method == "PATCH":
        obj = await crud.patch(ctx, who, cls, project, name, request)
    else:
        obj = await deletion.delete(ctx, cls, name, project, request)
    return await crud.shown(ctx, obj)


def _route(
    path: str, endpoint: Any, method: str, op: str, cls: type[Resource], scoped: bool
) -> None:
    """One operation `op` of `cls` (api/openapi.py documents it); `scoped`: under a project."""
    deps = [Depends(_project_path)] if scoped else []
    if method == "DELETE":
        deps.append(Depends(_delete_options))
    across = not scoped and cls.KIND.scope is Scope.PROJECT
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        name=f"{op}_{cls.KIND.plural}" + ("_across" if across else ""),
        operation_id=openapi.operation_id(op, cls, across=across),
        status_code=201 if op == "create" else 200,
        response_model=None,
        dependencies=deps,
        openapi_extra=openapi.operation(op, cls, scoped=scoped),
        tags=[cls.KIND.kind],
    )


def _add_kind(cls: type[Resource]) -> None:
    """The routes of one kind, each handler bound to it."""

    async def list_(request: Request, who: Who, params: Params) -> Any:
        return await _list(request, who, cls, _project(request), params)

    async def create(request: Request, who: Who) -> JSONResponse:
        return await _create(request, who, cls)

    async def read(request: Request, who: Who, name: str) -> Obj:
        return await _get(request, who, cls, name)

    async def write(request: Request, who: Who, name: str) -> Obj:
        return await _write(request, who, cls, name)

    scoped = cls.KIND.scope is Scope.PROJECT
    base = f"/projects/{{project}}/{cls.KIND.plural}" if scoped else f"/{cls.KIND.plural}"
    one = base + "/{name}"
    _route(base, list_, "GET", "list", cls, scoped)
    _route(base, create, "POST", "create", cls, scoped)
    _route(one, read, "GET", "read", cls, scoped)
    _route(one, write, "PUT", "replace", cls, scoped)
    _route(one, write, "PATCH", "patch", cls, scoped)
    _route(one, write, "DELETE", "delete", cls, scoped)
    _route(one + "/status", read, "GET", "readStatus", cls, scoped)
    if scoped:
        _route(f"/{cls.KIND.plural}", list_, "GET", "list", cls, False)


for _cls in kinds():
    _add_kind(_cls)
