"""`/v1/containers`: create (202, `?run=true`), list (`limit`, `marker`), show, update (PATCH
cpu, memory, name) and delete (204; `force`, `stop`) — each a write of a Container record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from zun_controller.api.crud import writer_of
from zun_controller.api.zunv1 import lookup, registries, rules, translate, versions, view
from zun_controller.api.zunv1.auth import Caller, caller
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.request import context, flag, json_body
from zun_controller.models.container import Container
from zun_controller.models.quantity import parse_cpu

router = APIRouter(prefix="/containers")
Who = Annotated[Caller, Depends(caller)]
MAX_LIMIT = 1000


@router.post("", status_code=202)
async def create(request: Request, who: Who, run: str | None = None) -> JSONResponse:
    who.check_write()
    body = await json_body(request)
    secret = None
    if body.get("registry") not in (None, ""):
        image = str(body.get("image") or "")
        secret = await registries.pull_secret_for(request, who, body["registry"], image)
    obj = translate.container_of(body, who.project, flag(run), secret)
    created = await context(request).admission.create(obj, writer_of(who.principal))
    shown = view.container(created, request, await _ids(request, who.project))
    location = shown["links"][0]["href"]
    return JSONResponse(shown, status_code=202, headers={"Location": location})


async def _ids(request: Request, project: str | None) -> dict[tuple[str, str], str]:
    return await registries.registry_ids(context(request), project)


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
    found = await lookup.visible(context(request), who, flag(all_projects))
    found = [c for c in found if name in (None, view.zun_name(c))]
    found = [c for c in found if status in (None, view.status_of(c))]
    page, more = _page(found, marker, min(limit or MAX_LIMIT, MAX_LIMIT))
    nxt = None
    if more and page:
        query = f"limit={limit or MAX_LIMIT}&marker={page[-1].metadata.uid}"
        nxt = f"{versions.v1_url(request)}/containers?{query}"
    ids = await _ids(request, None if flag(all_projects) else who.project)
    return {"containers": [view.container(c, request, ids) for c in page], "next": nxt}


@router.get("/{ident}")
async def show(request: Request, who: Who, ident: str, all_projects: str | None = None) -> Any:
    obj = await lookup.find(context(request), who, ident, flag(all_projects))
    return view.container(obj, request, await _ids(request, obj.project))


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
    edit = _updater(await json_body(request))
    obj = await lookup.change(context(request), who, ident, edit)
    return view.container(obj, request, await _ids(request, obj.project))


@router.delete("/{ident}", status_code=204)
async def delete(
    request: Request, who: Who, ident: str, force: str | None = None, stop: str | None = None
) -> Response:
    who.check_write()
    ctx = context(request)
    obj = await lookup.find(ctx, who, ident)
    action = "delete_force" if flag(force) else "delete_after_stop" if flag(stop) else "delete"
    rules.check(action, obj)
    await ctx.store.delete(Container, obj.name, obj.project)
    return Response(status_code=204)
