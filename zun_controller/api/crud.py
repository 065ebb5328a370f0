"""Create, get, list, replace, merge-patch and delete of any kind, whatever the path's scope.

Bodies are never trusted: each one is parsed by the models (`registry.parse`), then admitted
(`zun_controller.admission`: sizes, admin-only fields, ports, owner references, quota) before
anything is written, so a rejected request changes nothing in etcd.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from zun_controller.admission import Writer
from zun_controller.api import access
from zun_controller.api.auth import Principal
from zun_controller.api.context import ApiContext
from zun_controller.api.errors import ApiError
from zun_controller.api.fields import matcher
from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource, Scope
from zun_controller.models.project import Quota
from zun_controller.models.registry import parse

MERGE_PATCH = "application/merge-patch+json"


async def body_of(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidError.at("", "a record must be a JSON object")
    return data


def _place(
    data: dict[str, Any], cls: type[Resource], project: str | None, name: str | None
) -> None:
    """Fill metadata.project (and check name) from the path; mismatches are 422."""
    meta = data.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise InvalidError.at("metadata", "must be an object")
    if cls.KIND.scope is Scope.PROJECT:
        meta.setdefault("project", project)
        if meta["project"] != project:
            raise InvalidError.at("metadata.project", f"must be {project!r}, as in the path")
    if name is not None and meta.get("name") != name:
        raise InvalidError.at("metadata.name", f"must be {name!r}, as in the path")


def _parse_as(cls: type[Resource], data: dict[str, Any]) -> Resource:
    data.setdefault("apiVersion", "zun.openstack.org/v1alpha1")
    data.setdefault("kind", cls.KIND.kind)
    if data["kind"] != cls.KIND.kind:
        raise InvalidError.at("kind", f"must be {cls.KIND.kind!r} on this path")
    return parse(data)


async def create(
    ctx: ApiContext, who: Principal, cls: type[Resource], project: str | None, data: dict[str, Any]
) -> Resource:
    _place(data, cls, project, None)
    return await ctx.admission.create(_parse_as(cls, data), writer_of(who))


async def replace(
    ctx: ApiContext,
    who: Principal,
    cls: type[Resource],
    project: str | None,
    name: str,
    data: dict[str, Any],
) -> Resource:
    _place(data, cls, project, name)
    old = await ctx.store.get(cls, name, project)
    return await ctx.admission.update(_parse_as(cls, data), old, writer_of(who))


def writer_of(who: Principal) -> Writer:
    """A token's rights as admission sees them."""
    return Writer(f"token {who.name!r} ({who.role})", admin=who.admin)


async def patch(
    ctx: ApiContext,
    who: Principal,
    cls: type[Resource],
    project: str | None,
    name: str,
    request: Request,
) -> Resource:
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind not in (MERGE_PATCH, "application/json"):
        raise ApiError(415, f"PATCH takes {MERGE_PATCH}, not {kind or 'no content type'!r}")
    change = await body_of(request)
    old = await ctx.store.get(cls, name, project)
    merged = merge(old.to_wire(), change)
    assert isinstance(merged, dict)
    return await replace(ctx, who, cls, project, name, merged)


def merge(target: Any, change: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(change, dict):
        return change
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


async def listed(
    ctx: ApiContext,
    who: Principal,
    cls: type[Resource],
    project: str | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    fields = matcher(cls, params.get("fieldSelector"))
    page = await ctx.store.list(
        cls,
        project,
        selector=params.get("labelSelector"),
        limit=params.get("limit") or 0,
        continue_token=params.get("continue") or None,
    )
    items = [o.to_wire() for o in page.items if access.visible(who, o) and fields(o)]
    meta: dict[str, Any] = {"resourceVersion": page.resource_version}
    if page.continue_token:
        meta["continue"] = page.continue_token
    return {
        "apiVersion": "zun.openstack.org/v1alpha1",
        "kind": f"{cls.KIND.kind}List",
        "metadata": meta,
        "items": items,
    }


async def shown(ctx: ApiContext, obj: Resource) -> dict[str, Any]:
    """A record as answered: a Quota carries the project's current usage in status.used."""
    if isinstance(obj, Quota):
        used, _ = await ctx.quota.usage(obj.name)
        obj = obj.model_copy(deep=True)
        obj.status.used = used
    return obj.to_wire()
