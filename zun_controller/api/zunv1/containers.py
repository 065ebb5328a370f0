"""`/v1/containers`: create (202, `?run=true`), list (`limit`, `marker`), show, update (PATCH
cpu, memory, name) and delete (204; `force`, `stop`) — each a write of a Container record."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from zun_controller.api.context import ApiContext
from zun_controller.api.crud import writer_of
from zun_controller.api.zunv1 import lookup, rules, translate, versions, view
from zun_controller.api.zunv1.auth import Caller, caller
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.models.container import Container
from zun_controller.models.quantity import parse_cpu

router = APIRouter(prefix="/containers")
Who = Annotated[Caller, Depends(caller)]
MAX_LIMIT = 1000


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.zun
    return ctx


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZunV1Error(400, f"The request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ZunV1Error(400, "The request body must be a JSON object")
    return data


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@router.post("", status_code=202)
async def create(request: Request, who: Who, run: str | None = None) -> JSONResponse:
    who.check_write()
    obj = translate.container_of(await _body(request), who.project, _flag(run))
    created = await _ctx(request).admission.create(obj, writer_of(who.principal))
    shown = view.container(created, request)
    location = shown["links"][0]["href"]
    return JSONResponse(shown, status_code=202, headers={"Location": location})


def _page(found: list[Container], marker: str | None, limit: int) -> tuple[list[Container], bool]:
    ordered = sorted(found, key=lambda c: (c.metadata.creation_timestamp or 0, c.name))
    if marker:
        uids = [c.metadata.uid for c in ordered]
        if marker not in uids:
            raise ZunV1Error(400, f"Marker {marker} could not be found.")
        ordered = ordered[uids.index(marker) + 1 :]
    return ordered[:limit], len(ordered) > limit


@router.get("")
async def list_(
    request: Request,
    who: Who,
    limit: Annotated[int | None, Query(ge=0)] = None,
    marker: str | None = None,
    all_projects: str | None = None,
    name: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    found = await lookup.visible(_ctx(request), who, _flag(all_projects))
    found = [c for c in found if name in (None, view.zun_name(c))]
    found = [c for c in found if status in (None, view.status_of(c))]
    page, more = _page(found, marker, min(limit or MAX_LIMIT, MAX_LIMIT))
    nxt = None
    if more and page:
        query = f"limit={limit or MAX_LIMIT}&marker={page[-1].metadata.uid}"
        nxt = f"{versions.v1_url(request)}/containers?{query}"
    return {"containers": [view.container(c, request) for c in page], "next": nxt}


@router.get("/{ident}")
async def show(request: Request, who: Who, ident: str, all_projects: str | None = None) -> Any:
    obj = await lookup.find(_ctx(request), who, ident, _flag(all_projects))
    return view.container(obj, request)


def _updater(patch: dict[str, Any]) -> Any:
    unknown = set(patch) - {"cpu", "memory", "name"}
    if unknown or not patch:
        raise ZunV1Error(400, f"Only cpu, memory and name can be updated, not {sorted(unknown)}")

    def edit(obj: Container) -> None:
        rules.check("update", obj)
        if patch.get("cpu") is not None:
            obj.spec.resources.cpu = cpu_cores(patch["cpu"])
        if patch.get("memory") not in (None, ""):
            obj.spec.resources.memory = translate.memory_bytes(patch["memory"])
        if patch.get("name"):
            rename(obj, str(patch["name"]))

    return edit


def cpu_cores(value: Any) -> float:
    """Zun's `cpu` (cores); its bounds are admission's."""
    try:
        return parse_cpu(value)
    except ValueError as exc:
        raise ZunV1Error(400, f"Invalid cpu {value!r}: {exc}") from None


def rename(obj: Container, name: str) -> None:
    """A Zun rename keeps the record (and so its uuid and engine container): the new Zun name
    is kept in an annotation."""
    translate.record_name(name)  # validates
    obj.metadata.annotations = {**obj.metadata.annotations, view.NAME_ANNOTATION: name}


@router.patch("/{ident}")
async def update(request: Request, who: Who, ident: str) -> Any:
    edit = _updater(await _body(request))
    obj = await lookup.change(_ctx(request), who, ident, edit)
    return view.container(obj, request)


@router.delete("/{ident}", status_code=204)
async def delete(
    request: Request, who: Who, ident: str, force: str | None = None, stop: str | None = None
) -> Response:
    who.check_write()
    ctx = _ctx(request)
    obj = await lookup.find(ctx, who, ident)
    action = "delete_force" if _flag(force) else "delete_after_stop" if _flag(stop) else "delete"
    rules.check(action, obj)
    await ctx.store.delete(Container, obj.name, obj.project)
    return Response(status_code=204)
