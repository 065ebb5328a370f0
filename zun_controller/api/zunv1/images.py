"""`/v1/images`: the images on the Hosts' engines, pulling one onto a Host, and removing one.

Admin only, as upstream's policy defaults (`image:get_all`, `image:get_one`, `image:pull`,
`image:delete` are `rule:admin_api`). Nothing is stored: the list is what the engines hold now,
one row per tag (`uuid` is derived from host, repository and tag, so it is stable while the tag
is there; an engine that does not answer is left out of the list). A pull is an action through
the `ImageIO` port (`pulls.py`: single flight, bounded); the answer comes when it ends: 202 with
the image, or 400 with the registry's words (`unauthorized: ...`, `manifest unknown`). It logs
in with the first PullSecret (by name) of the caller's project that has an entry for the image's
registry host, as a Container's pull would with that secret named.

A delete (204) removes the row's tag from its Host's engine, as `docker rmi repository:tag`:
the image goes with its last tag. It is never forced: while containers use it (made by that
tag, or by any when it is the image's last tag), running or not, it is a 409 naming them (a
Container record by its Zun name and project, any other engine container by its id), and
nothing is removed.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from zun_controller.api.context import ApiContext
from zun_controller.api.io import Credentials, ImageIO, LocalImage
from zun_controller.api.zunv1 import versions
from zun_controller.api.zunv1.auth import Caller, caller
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.pulls import Pulls
from zun_controller.api.zunv1.request import context, json_body, page
from zun_controller.api.zunv1.view import zun_name
from zun_controller.errors import InUseError, NotFoundError, PermanentError, ZunError
from zun_controller.models.container import Container
from zun_controller.models.host import Host
from zun_controller.models.image import ImageReference, parse_reference
from zun_controller.models.pullsecret import PullSecret

router = APIRouter(prefix="/images")
Who = Annotated[Caller, Depends(caller)]
#: uuids of image rows: uuid5 of "host/repository:tag" in this namespace
NAMESPACE = uuid.UUID("5b0f6a43-8d51-4c8e-9a0c-3f1d2e7b9c41")
LIST_WITHIN_S = 10.0
PULL_FAILED = "zun.common.exception.ImagePullFailed"


def _io(ctx: ApiContext) -> ImageIO:
    if ctx.images is None:
        raise ZunV1Error(503, "This API server has no access to container engines.")
    return ctx.images


def _pulls(request: Request) -> Pulls:
    pulls: Pulls = request.app.state.zunv1_pulls
    return pulls


def image_view(
    host: str, repo: str, tag: str, image: LocalImage, request: Request
) -> dict[str, Any]:
    uid = str(uuid.uuid5(NAMESPACE, f"{host}/{repo}:{tag}"))
    href = f"{versions.v1_url(request)}/images/{uid}"
    return {
        "uuid": uid,
        "repo": repo,
        "tag": tag,
        "image_id": image.id,
        "size": image.size,
        "host": host,
        "project_id": None,
        "user_id": None,
        "links": [{"href": href, "rel": "self"}, {"href": href, "rel": "bookmark"}],
    }


Entry = tuple[dict[str, Any], Host, str]  # a row, its Host, the engine's `repository:tag`


def _entries(host: Host, image: LocalImage, request: Request) -> list[Entry]:
    found = []
    for repo_tag in image.repo_tags:
        try:
            ref = parse_reference(repo_tag)
        except ValueError:
            continue  # not a name a client could pull by
        row = image_view(host.name, ref.repository, ref.tag or "latest", image, request)
        found.append((row, host, repo_tag))
    return found


async def _host_images(io: ImageIO, host: Host) -> list[LocalImage]:
    try:
        async with asyncio.timeout(LIST_WITHIN_S):
            return list(await io.images(host))
    except (ZunError, TimeoutError):  # an engine that does not answer is left out
        return []


async def _all_entries(request: Request) -> list[Entry]:
    ctx = context(request)
    io = _io(ctx)
    hosts = sorted((await ctx.store.list(Host)).items, key=lambda h: h.name)
    found = await asyncio.gather(*(_host_images(io, h) for h in hosts))
    entries = [entry for h, images in zip(hosts, found, strict=True) for i in images
               for entry in _entries(h, i, request)]  # fmt: skip
    return sorted(entries, key=lambda e: (e[0]["host"], e[0]["repo"], e[0]["tag"]))


async def _all_rows(request: Request) -> list[dict[str, Any]]:
    return [row for row, _, _ in await _all_entries(request)]


def _not_found(ident: str) -> ZunV1Error:
    return ZunV1Error(
        404, f"Image {ident} could not be found.", code="zun.common.exception.ImageNotFound"
    )


@router.get("")
@router.get("/", include_in_schema=False)
async def list_(
    request: Request,
    who: Who,
    limit: Annotated[int | None, Query(ge=0)] = None,
    marker: str | None = None,
) -> dict[str, Any]:
    who.check_admin("image:get_all")
    return page(request, "images", await _all_rows(request), marker, limit)


@router.get("/{ident}")
async def show(request: Request, who: Who, ident: str) -> dict[str, Any]:
    who.check_admin("image:get_one")
    for row in await _all_rows(request):
        if row["uuid"] == ident:
            return row
    raise _not_found(ident)


async def _host(ctx: ApiContext, ident: Any) -> Host:
    if not isinstance(ident, str) or not ident:
        raise ZunV1Error(400, "Invalid input for field/attribute host: required (a name or uuid)")
    for found in (await ctx.store.list(Host)).items:
        if ident in (found.metadata.uid, found.name):
            return found
    raise ZunV1Error(404, f"ComputeNode {ident} could not be found.")


def _reference(body: dict[str, Any]) -> ImageReference:
    repo, tag = body.get("repo"), body.get("tag")
    if not isinstance(repo, str) or not repo:
        raise ZunV1Error(400, "Invalid input for field/attribute repo: required")
    if tag not in (None, "") and not isinstance(tag, str):
        raise ZunV1Error(400, "Invalid input for field/attribute tag: a string")
    try:
        ref = parse_reference(repo)
        if tag and ref.tag is None and ref.digest is None:
            ref = parse_reference(f"{repo}:{tag}")
    except ValueError as exc:
        raise ZunV1Error(400, f"Invalid input for field/attribute repo: {exc}") from None
    return ref


async def credentials_for(ctx: ApiContext, project: str, registry: str) -> Credentials | None:
    """The first PullSecret (by name) of `project` with an entry for `registry`."""
    secrets = sorted((await ctx.store.list(PullSecret, project)).items, key=lambda s: s.name)
    for secret in secrets:
        found = secret.spec.credentials().get(registry)
        if found is not None:
            return Credentials(registry, found[0], found[1])
    return None


@router.post("", status_code=202)
@router.post("/", status_code=202, include_in_schema=False)
async def pull(request: Request, who: Who) -> JSONResponse:
    who.check_admin("image:pull")
    body = await json_body(request)
    ref = _reference(body)
    ctx = context(request)
    host = await _host(ctx, body.get("host"))
    image = f"{ref.repository}@{ref.digest}" if ref.digest else f"{ref.repository}:{ref.pull_tag}"
    creds = await credentials_for(ctx, who.project, ref.registry)
    try:
        pulled = await _pulls(request).pull(_io(ctx), host, image, creds)
    except PermanentError as exc:
        if exc.reason != "ErrImagePull":
            raise
        raise ZunV1Error(400, f"Failed to pull image: {exc.message}", code=PULL_FAILED) from None
    shown = image_view(host.name, ref.repository, ref.pull_tag, pulled, request)
    return JSONResponse(shown, status_code=202, headers={"Location": shown["links"][0]["href"]})


async def _users(ctx: ApiContext, host: Host, ids: tuple[str, ...]) -> str:
    """The containers of these engine ids on `host`: Container records by Zun name and
    project, others by id."""
    records = {
        c.status.container_id: c
        for c in (await ctx.store.list(Container, None)).items
        if c.status.host == host.name and c.status.container_id
    }
    named = []
    for cid in ids:
        obj = records.get(cid)
        named.append(
            f"{zun_name(obj)} (project {obj.project}, uuid {obj.metadata.uid})"
            if obj is not None
            else f"{cid[:12]} (an engine container of no Zun record)"
        )
    return ", ".join(named)


@router.delete("/{ident}", status_code=204)
async def delete(request: Request, who: Who, ident: str) -> Response:
    who.check_admin("image:delete")
    ctx = context(request)
    found = [e for e in await _all_entries(request) if e[0]["uuid"] == ident]
    if not found:
        raise _not_found(ident)
    row, host, repo_tag = found[0]
    try:
        await _io(ctx).remove(host, repo_tag)
    except NotFoundError:
        raise _not_found(ident) from None  # removed meanwhile
    except InUseError as exc:
        users = await _users(ctx, host, exc.users)
        raise ZunV1Error(
            409,
            f"Image {row['repo']}:{row['tag']} on host {host.name} is in use by container "
            f"{users}: delete the container first.",
        ) from None
    return Response(status_code=204)


@router.get("/{ident}/search")
async def not_served(who: Who, ident: str) -> None:
    raise ZunV1Error(501, "Searching images is not served here.")
