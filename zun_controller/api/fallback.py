"""The answer to a request no route takes, registered after every real route (`install`).

A path some route has, asked with another method, is 405 with `Allow` naming the methods its
routes take (writing a record's `/status` among them: the controller writes status). Any other
path is 404; under the API prefix the message says what is wrong (an unknown plural, or a kind
asked at the other scope's path). Both are Status bodies (api/errors.py). Mounted applications
(`/v1`) answer their own paths before this.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.routing import Match, Mount

from zun_controller.api.context import PREFIX
from zun_controller.api.errors import ApiError
from zun_controller.models.base import Scope
from zun_controller.models.registry import kinds

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
NAME = "zun_fallback"


def allowed(request: Request) -> list[str]:
    """The methods some route of the app (but this one and mounts) takes at the request's
    path: each method is tried against the routes, as the router itself would match it."""
    routes = [
        r
        for r in request.app.router.routes
        if not isinstance(r, Mount) and getattr(r, "name", None) != NAME
    ]
    return [
        method
        for method in METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def not_found(path: str) -> str:
    """Why nothing is at `path`, as far as the API's paths tell."""
    if not path.startswith(PREFIX + "/"):
        return f"no such path: {path}"
    parts = path.removeprefix(PREFIX + "/").split("/")
    in_project = parts[0] == "projects" and len(parts) > 2
    plural = parts[2] if in_project else parts[0]
    scopes = {cls.KIND.plural: cls.KIND.scope for cls in kinds()}
    scope = scopes.get(plural)
    if scope is None:
        return f"no kind with plural {plural!r} in {PREFIX}"
    if in_project and scope is Scope.CLUSTER:
        return f"{plural} are cluster-scoped: use {PREFIX}/{plural}"
    if not in_project and scope is Scope.PROJECT and len(parts) > 1:
        return f"{plural} are project-scoped: use {PREFIX}/projects/{{project}}/{plural}"
    return f"no such path: {path}"


async def fallback(request: Request) -> None:
    methods = allowed(request)
    path = request.url.path
    if not methods:
        raise ApiError(404, not_found(path))
    if path.startswith(PREFIX) and path.endswith("/status"):
        message = "status is written by the controller; users may only read it"
    else:
        message = f"{request.method} is not allowed on {path}: it takes {', '.join(methods)}"
    raise ApiError(405, message, headers={"Allow": ", ".join(methods)})


def install(app: FastAPI) -> None:
    """Answer every request no earlier route took: call after every route is added."""
    app.add_api_route("/{path:path}", fallback, methods=METHODS, name=NAME, include_in_schema=False)
