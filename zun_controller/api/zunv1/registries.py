"""`/v1/registries`: Zun's private registry credentials as the project's `PullSecret` records.

A Zun registry (name, domain, username, password) is one PullSecret whose
`.dockerconfigjson` has one `auths` entry, for the domain; its uuid is the record's uid, its
name the record's name (or, when the Zun name is not a DNS-1123 label, an annotation on a
record named `zun-<hex>`). A PullSecret written another way (zunctl, GitOps) shows as a
registry by its first `auths` entry. Only the project's writers see or change them (a reader
gets 403, as for PullSecrets in the REST API); `password` is answered as `***`, always.

Create (202, `Location`) and update take `{"registry": {...}}` and answer
`{"registry": {...}}`; list answers `{"registries": [...], "next": URL|null}`, oldest first
(filters `name`, `domain`, `username`; `limit`, `marker`; `all_projects` for admins).

Delete is 204 when no record uses the registry; while Containers or Applications of the
project name it in `imagePullSecrets` it is a 409 naming them, and nothing is deleted (the
controller would hold the record, Terminating with condition `InUse`, which Zun's clients do
not know: they would see a registry that stays after a delete they were told was accepted). A
user made between the look and the delete finds the record held by the controller until it is
unused. A registry whose record is deleting (held, or about to go) is not shown or found.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from zun_controller.api.context import ApiContext
from zun_controller.api.crud import writer_of
from zun_controller.api.zunv1 import translate, versions
from zun_controller.api.zunv1.auth import Caller, caller
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.request import context, flag, json_body, page
from zun_controller.api.zunv1.view import NAME_ANNOTATION
from zun_controller.api.zunv1.view import zun_name as container_name
from zun_controller.errors import ConflictError, InvalidError
from zun_controller.models.application import Application
from zun_controller.models.base import ObjectMeta
from zun_controller.models.container import Container
from zun_controller.models.image import parse_reference
from zun_controller.models.pullsecret import DOCKER_CONFIG_KEY, PullSecret, PullSecretSpec
from zun_controller.reconcilers.inuse import User, used_by
from zun_controller.reconcilers.pull_secret import pull_secret_users

router = APIRouter(prefix="/registries")
Who = Annotated[Caller, Depends(caller)]
HIDDEN = "***"
FIELDS = ("name", "domain", "username", "password")
_DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?$")
ATTEMPTS = 5


def zun_name(secret: PullSecret) -> str:
    return secret.metadata.annotations.get(NAME_ANNOTATION, secret.name)


def _auths(secret: PullSecret) -> dict[str, Any]:
    auths: dict[str, Any] = json.loads(secret.spec.data[DOCKER_CONFIG_KEY])["auths"]
    return auths


def _first(secret: PullSecret) -> tuple[str, str, str]:
    """(domain, username, password) of the record's first `auths` entry."""
    creds = secret.spec.credentials()
    domain = next(iter(creds), "")
    user, password = creds.get(domain, ("", ""))
    return domain, user, password


def registry_view(secret: PullSecret, request: Request) -> dict[str, Any]:
    """A PullSecret as Zun shows a registry; the password is never in it."""
    uid = secret.metadata.uid or ""
    href = f"{versions.v1_url(request)}/registries/{uid}"
    domain, username, _ = _first(secret)
    return {
        "uuid": uid,
        "name": zun_name(secret),
        "domain": domain,
        "username": username,
        "password": HIDDEN,
        "project_id": secret.project,
        "user_id": None,
        "links": [{"href": href, "rel": "self"}, {"href": href, "rel": "bookmark"}],
    }


def _text(fields: dict[str, Any], key: str, required: bool) -> str | None:
    value = fields.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 4096:
        what = "required" if value is None else "a non-empty string"
        raise ZunV1Error(400, f"Invalid input for field/attribute {key}: {what}")
    return value


def _domain(value: str) -> str:
    host = value.split("://", 1)[-1].rstrip("/")
    if not _DOMAIN.match(host):
        raise ZunV1Error(
            400, f"Invalid input for field/attribute domain: {value!r} is not host[:port]"
        )
    return host


def _registry_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields = body.get("registry")
    if not isinstance(fields, dict):
        raise ZunV1Error(400, 'The body must be {"registry": {"domain": ..., ...}}')
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ZunV1Error(
            400, f"Invalid input for field/attribute {unknown[0]}: not a registry field"
        )
    return fields


def docker_config(domain: str, username: str, password: str) -> str:
    """The `.dockerconfigjson` of one registry."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps(
        {"auths": {domain: {"username": username, "password": password, "auth": auth}}}
    )


def _spec(config: str) -> PullSecretSpec:
    try:
        return PullSecretSpec(data={DOCKER_CONFIG_KEY: config})
    except ValueError:  # its words may quote the config, password included
        raise ZunV1Error(400, "Invalid registry: not a Docker config of credentials") from None


def _username(fields: dict[str, Any], required: bool) -> str | None:
    value = _text(fields, "username", required)
    if value is not None and ":" in value:
        raise ZunV1Error(400, "Invalid input for field/attribute username: no ':' in it")
    return value


def _new_secret(fields: dict[str, Any], project: str) -> PullSecret:
    domain = _domain(str(_text(fields, "domain", True)))
    username, password = _username(fields, True), _text(fields, "password", True)
    assert username is not None and password is not None
    name, annotations = translate.record_name(_text(fields, "name", False))
    meta = ObjectMeta(name=name, project=project, annotations=annotations)
    return PullSecret(metadata=meta, spec=_spec(docker_config(domain, username, password)))


@router.post("", status_code=202)
async def create(request: Request, who: Who) -> JSONResponse:
    who.check_write()
    secret = _new_secret(_registry_fields(await json_body(request)), who.project)
    try:
        made = await context(request).admission.create(secret, writer_of(who.principal))
    except InvalidError as exc:
        raise ZunV1Error(400, f"Invalid input: {exc}") from None
    shown = registry_view(made, request)
    location = shown["links"][0]["href"]
    return JSONResponse({"registry": shown}, status_code=202, headers={"Location": location})


async def visible(request: Request, who: Caller, all_projects: bool = False) -> list[PullSecret]:
    """The registries the caller may see: its project's (its writers only), or, for an admin
    with `all_projects`, every project's; none whose record is deleting."""
    who.check_write()
    store = context(request).store
    if all_projects:
        who.check_admin("registry:get_all_all_projects")
        found = (await store.list(PullSecret, None)).items
    else:
        found = (await store.list(PullSecret, who.project)).items
    return [s for s in found if not s.metadata.deletion_timestamp]


async def find(request: Request, who: Caller, ident: str) -> PullSecret:
    """The registry `ident` names (uuid, then Zun name) in the caller's project; 404 if none,
    409 if two have that name."""
    found = await visible(request, who)
    by_uuid = [s for s in found if s.metadata.uid == ident]
    by_name = by_uuid or [s for s in found if zun_name(s) == ident]
    if len(by_name) > 1:
        raise ZunV1Error(409, f"Multiple registries exist with name {ident!r}: use the uuid.")
    if not by_name:
        raise ZunV1Error(
            404,
            f"Registry {ident} could not be found.",
            code="zun.common.exception.RegistryNotFound",
        )
    return by_name[0]


@router.get("")
async def list_(
    request: Request,
    who: Who,
    all_projects: str | None = None,
    name: str | None = None,
    domain: str | None = None,
    username: str | None = None,
    limit: Annotated[int | None, Query(ge=0)] = None,
    marker: str | None = None,
) -> dict[str, Any]:
    found = await visible(request, who, flag(all_projects))
    ordered = sorted(found, key=lambda s: (s.metadata.creation_timestamp or 0, s.name))
    shown = [registry_view(s, request) for s in ordered]
    wanted = {"name": name, "domain": domain, "username": username}
    shown = [r for r in shown if all(v is None or r[k] == v for k, v in wanted.items())]
    return page(request, "registries", shown, marker, limit)


@router.get("/{ident}")
async def show(request: Request, who: Who, ident: str) -> dict[str, Any]:
    return {"registry": registry_view(await find(request, who, ident), request)}


def _patched(secret: PullSecret, fields: dict[str, Any]) -> PullSecret:
    """`secret` with the fields changed; the first `auths` entry is rewritten, others kept."""
    if not fields:
        raise ZunV1Error(400, "Nothing to update: give name, domain, username or password")
    new = secret.model_copy(deep=True)
    domain, username, password = _first(secret)
    domain = _domain(str(_text(fields, "domain", False) or domain))
    username = _username(fields, False) or username
    password = _text(fields, "password", False) or password
    auths = _auths(secret)
    auths.pop(next(iter(auths), ""), None)
    config = json.loads(docker_config(domain, username, password))
    config["auths"].update({k: v for k, v in auths.items() if k != domain})
    new.spec = _spec(json.dumps(config))
    if (zname := _text(fields, "name", False)) is not None:
        translate.record_name(zname)  # validates
        new.metadata.annotations = {**new.metadata.annotations, NAME_ANNOTATION: zname}
    return new


@router.patch("/{ident}")
async def update(request: Request, who: Who, ident: str) -> dict[str, Any]:
    fields = _registry_fields(await json_body(request))
    ctx = context(request)
    for attempt in range(ATTEMPTS):
        old = await find(request, who, ident)
        try:
            saved = await ctx.admission.update(_patched(old, fields), old, writer_of(who.principal))
        except ConflictError:
            if attempt == ATTEMPTS - 1:
                raise
            continue
        return {"registry": registry_view(saved, request)}
    raise AssertionError("unreachable")


async def users_of(ctx: ApiContext, secret: PullSecret) -> list[User]:
    """The records using the registry, as the controller's in-use rule sees them (read from
    the store); Containers by their Zun names."""
    containers = (await ctx.store.list(Container, secret.project)).items
    apps = (await ctx.store.list(Application, secret.project)).items
    names = {c.name: container_name(c) for c in containers}
    return [
        User(u.kind, names.get(u.name, u.name), u.project) if u.kind == "Container" else u
        for u in pull_secret_users(secret.name, secret.project, containers, apps)
    ]


@router.delete("/{ident}", status_code=204)
async def delete(request: Request, who: Who, ident: str) -> Response:
    secret = await find(request, who, ident)
    ctx = context(request)
    if users := await users_of(ctx, secret):
        raise ZunV1Error(
            409,
            f"Registry {zun_name(secret)} is in use ({used_by(users)}): delete them first.",
            code="zun.common.exception.Conflict",
        )
    await ctx.store.delete(PullSecret, secret.name, secret.project)
    return Response(status_code=204)


async def registry_ids(ctx: ApiContext, project: str | None) -> dict[tuple[str, str], str]:
    """(project, record name) -> uuid of the PullSecrets in `project` (None: every project),
    for containers' `registry_id`."""
    found = (await ctx.store.list(PullSecret, project)).items
    return {(s.project or "", s.name): s.metadata.uid or "" for s in found}


async def pull_secret_for(request: Request, who: Caller, ident: Any, image: str) -> str:
    """The record name of the registry a container create names, for `spec.imagePullSecrets`;
    400 naming `registry` when it is not one of the project's or is for another host than
    the image's."""
    if not isinstance(ident, str) or not ident:
        raise ZunV1Error(400, "Invalid input for field/attribute registry: a registry name or uuid")
    try:
        secret = await find(request, who, ident)
    except ZunV1Error as exc:
        if exc.status != 404:
            raise
        raise ZunV1Error(
            400, f"Invalid input for field/attribute registry: Registry {ident} could not be found."
        ) from None
    hosts = secret.spec.credentials()
    try:
        wanted = parse_reference(image).registry
    except ValueError:
        return secret.name  # the image's own error is admission's, naming spec.image
    if wanted not in hosts:
        raise ZunV1Error(
            400,
            f"Invalid input for field/attribute registry: registry {ident} is for "
            f"{', '.join(hosts)}, and image {image} is pulled from {wanted}",
        )
    return secret.name
