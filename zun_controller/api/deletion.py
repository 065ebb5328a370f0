"""DELETE with Kubernetes' DeleteOptions: `propagationPolicy` as a query parameter or in a JSON
body `{"kind": "DeleteOptions", "propagationPolicy": "..."}` (models/deletion.py says what each
policy does). A bad value, an unknown body field or a body that disagrees with the query is a
422 naming the field, and nothing is deleted."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from zun_controller.api.context import ApiContext
from zun_controller.api.errors import ApiError
from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource
from zun_controller.models.deletion import PropagationPolicy

#: the DeleteOptions fields a body may carry (kind and apiVersion as Kubernetes clients send)
BODY_FIELDS = ("kind", "apiVersion", "propagationPolicy")
POLICIES = ", ".join(p.value for p in PropagationPolicy)


def policy_of(value: object) -> PropagationPolicy:
    """The policy a value names; `InvalidError` at `propagationPolicy` otherwise."""
    try:
        return PropagationPolicy(value if isinstance(value, str) else "")
    except ValueError:
        reason = f"must be one of {POLICIES}, got {value!r}"
        raise InvalidError.at("propagationPolicy", reason) from None


async def _body_options(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidError.at("", "DeleteOptions must be a JSON object")
    for field in data:
        if field not in BODY_FIELDS:
            raise InvalidError.at(field, "not a DeleteOptions field this API takes")
    if data.get("kind", "DeleteOptions") != "DeleteOptions":
        raise InvalidError.at("kind", f"must be 'DeleteOptions', got {data['kind']!r}")
    return data


async def delete_policy(request: Request) -> PropagationPolicy:
    """The propagation policy a DELETE asks for (Background when it names none)."""
    query = request.query_params.get("propagationPolicy")
    body = (await _body_options(request)).get("propagationPolicy")
    if query is not None and body is not None and query != body:
        reason = f"the query says {query!r}, the body {body!r}"
        raise InvalidError.at("propagationPolicy", reason)
    value = query if query is not None else body
    return PropagationPolicy.BACKGROUND if value is None else policy_of(value)


async def delete(
    ctx: ApiContext, cls: type[Resource], name: str, project: str | None, request: Request
) -> Resource:
    """Delete as asked: the record as it ends up (still there, deleting, unless Background
    found no finalizer on it)."""
    policy = await delete_policy(request)
    rv = request.query_params.get("resourceVersion")
    return await ctx.store.delete(
        cls, name, project, resource_version=rv, finalizer=policy.finalizer
    )
