"""The resource paths of DESIGN.md "Interfaces", for every registered kind.

`/apis/zun.openstack.org/v1alpha1/projects/{project}/{plural}[/{name}[/status]]` for
project-scoped kinds and `/apis/zun.openstack.org/v1alpha1/{plural}[/{name}[/status]]` for
cluster-scoped ones (and, read-only, for a project-scoped kind across the caller's projects).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from zun_controller.api import access, crud, deletion
from zun_controller.api.auth import Principal
from zun_controller.api.context import PREFIX, context, kind_of, principal
from zun_controller.api.errors import ApiError
from zun_controller.api.watch import Watch
from zun_controller.models.base import Resource, Scope

router = APIRouter(prefix=PREFIX)
Who = Annotated[Principal, Depends(principal)]
Obj = dict[str, Any]


def _kind(plural: str, project: str | None) -> type[Resource]:
    cls = kind_of(plural)
    if project is not None and cls.KIND.scope is Scope.CLUSTER:
        raise ApiError(404, f"{cls.KIND.plural} are cluster-scoped: use {PREFIX}/{plural}")
    return cls


def _named(plural: str, project: str | None) -> type[Resource]:
    cls = _kind(plural, project)
    if project is None and cls.KIND.scope is Scope.PROJECT:
        raise ApiError(
            404, f"{plural} are project-scoped: use {PREFIX}/projects/{{project}}/{plural}"
        )
    return cls


async def _list(
    request: Request, who: Principal, plural: str, project: str | None, params: Obj
) -> Any:
    cls = _kind(plural, project)
    access.check(who, cls, project, None, write=False)
    ctx = context(request)
    if params.get("watch"):
        stream = Watch(ctx, who, cls, project, params).stream()
        ctx.slots.take(who.name)
        return StreamingResponse(ctx.slots.hold(who.name, stream), media_type=NDJSON)
    return await crud.listed(ctx, who, cls, project, params)


def _params(
    labelSelector: str | None = None,
    fieldSelector: str | None = None,
    limit: Annotated[int, Query(ge=0, le=10000)] = 0,
    continue_: Annotated[str | None, Query(alias="continue")] = None,
    watch: bool = False,
    resourceVersion: Annotated[int, Query(ge=0)] = 0,
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
NDJSON = "application/x-ndjson"


@router.get("/projects/{project}/{plural}")
async def list_in_project(
    request: Request, who: Who, project: str, plural: str, params: Params
) -> Any:
    return await _list(request, who, plural, project, params)


@router.get("/{plural}")
async def list_cluster(request: Request, who: Who, plural: str, params: Params) -> Any:
    return await _list(request, who, plural, None, params)


async def _create(
    request: Request, who: Principal, plural: str, project: str | None
) -> JSONResponse:
    cls = _named(plural, project)
    access.check(who, cls, project, None, write=True)
    ctx = context(request)
    obj = await crud.create(ctx, who, cls, project, await crud.body_of(request))
    return JSONResponse(await crud.shown(ctx, obj), status_code=201)


@router.post("/projects/{project}/{plural}", status_code=201)
async def create_in_project(request: Request, who: Who, project: str, plural: str) -> JSONResponse:
    return await _create(request, who, plural, project)


@router.post("/{plural}", status_code=201)
async def create_cluster(request: Request, who: Who, plural: str) -> JSONResponse:
    return await _create(request, who, plural, None)


async def _get(
    request: Request, who: Principal, plural: str, project: str | None, name: str
) -> Obj:
    cls = _named(plural, project)
    access.check(who, cls, project, name, write=False)
    ctx = context(request)
    return await crud.shown(ctx, await ctx.store.get(cls, name, project))


async def _write(
    request: Request, who: Principal, plural: str, project: str | None, name: str
) -> Obj:
    cls = _named(plural, project)
    access.check(who, cls, project, name, write=True)
    ctx = context(request)
    if request.method == "PUT":
        obj = await crud.replace(ctx, who, cls, project, name, await crud.body_of(request))
    elif request.method == "PATCH":
        obj = await crud.patch(ctx, who, cls, project, name, request)
    else:
        obj = await deletion.delete(ctx, cls, name, project, request)
    return await crud.shown(ctx, obj)


@router.get("/projects/{project}/{plural}/{name}")
@router.get("/projects/{project}/{plural}/{name}/status")
async def get_in_project(request: Request, who: Who, project: str, plural: str, name: str) -> Obj:
    return await _get(request, who, plural, project, name)


@router.put("/projects/{project}/{plural}/{name}")
async def replace_in_project(
    request: Request, who: Who, project: str, plural: str, name: str
) -> Obj:
    """Replace spec, labels and annotations; metadata.resourceVersion must be current."""
    return await _write(request, who, plural, project, name)


@router.patch("/projects/{project}/{plural}/{name}")
async def patch_in_project(request: Request, who: Who, project: str, plural: str, name: str) -> Obj:
    """A JSON merge patch (application/merge-patch+json)."""
    return await _write(request, who, plural, project, name)


@router.delete("/projects/{project}/{plural}/{name}")
async def delete_in_project(
    request: Request, who: Who, project: str, plural: str, name: str
) -> Obj:
    """Delete; with finalizers the record stays, marked deleting. Answers it as it ends up.

    `?propagationPolicy=Background|Foreground|Orphan` (or a DeleteOptions body) says what
    happens to the records it owns."""
    return await _write(request, who, plural, project, name)


@router.get("/{plural}/{name}")
@router.get("/{plural}/{name}/status")
async def get_cluster(request: Request, who: Who, plural: str, name: str) -> Obj:
    return await _get(request, who, plural, None, name)


@router.put("/{plural}/{name}")
async def replace_cluster(request: Request, who: Who, plural: str, name: str) -> Obj:
    """Replace spec, labels and annotations; metadata.resourceVersion must be current."""
    return await _write(request, who, plural, None, name)


@router.patch("/{plural}/{name}")
async def patch_cluster(request: Request, who: Who, plural: str, name: str) -> Obj:
    """A JSON merge patch (application/merge-patch+json)."""
    return await _write(request, who, plural, None, name)


@router.delete("/{plural}/{name}")
async def delete_cluster(request: Request, who: Who, plural: str, name: str) -> Obj:
    """Delete; with finalizers the record stays, marked deleting. Answers it as it ends up.

    `?propagationPolicy=Background|Foreground|Orphan` (or a DeleteOptions body) says what
    happens to the records it owns."""
    return await _write(request, who, plural, None, name)


async def status_is_read_only(who: Who) -> Obj:
    raise ApiError(405, "status is written by the controller; users may only read it")


for _path in ("/projects/{project}/{plural}/{name}/status", "/{plural}/{name}/status"):
    for _method in ("PUT", "PATCH", "POST", "DELETE"):
        router.add_api_route(_path, status_is_read_only, methods=[_method], include_in_schema=False)
