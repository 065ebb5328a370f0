"""OpenStack Zun's v1 container API under `/v1`, so python-zunclient and `openstack
appcontainer` keep working: each call becomes a change of records in the store (README.md
here has the mapping, the microversions and the auth).

May import what `zun_controller.api` may (models, store, the API's own context, tokens and
`ContainerIO` port); never engines or drivers.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from zun_controller.api.context import ApiContext
from zun_controller.api.zunv1 import (
    actions,
    containers,
    errors,
    hosts,
    images,
    noauth,
    pulls,
    registries,
    versions,
)
from zun_controller.api.zunv1.auth import ZunV1Settings

__all__ = ["ZunV1Settings", "mount"]
Next = Callable[[Request], Awaitable[Response]]


async def _microversion(request: Request, call_next: Next) -> Response:
    request.state.request_id = f"req-{uuid.uuid4()}"
    try:
        version = versions.negotiate(request.headers.get(versions.HEADER))
    except errors.ZunV1Error as exc:
        response: Response = await errors.handle(request, exc)
        response.headers.update(versions.echo(versions.MIN_VERSION))
        return response
    request.state.version = version
    response = await call_next(request)
    response.headers.update(versions.echo(version))
    response.headers["X-Openstack-Request-Id"] = request.state.request_id
    return response


async def _v1_document(request: Request) -> Response:
    return JSONResponse(versions.v1_document(request))


def v1_app(ctx: ApiContext, settings: ZunV1Settings) -> FastAPI:
    """The /v1 application: its own error shape, microversions and routes."""
    app = FastAPI(title="OpenStack Zun v1 API", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.zun, app.state.zunv1 = ctx, settings
    app.state.zunv1_pulls = pulls.Pulls()
    for exc_type in errors.HANDLED:
        app.add_exception_handler(exc_type, errors.handle)
    app.middleware("http")(_microversion)
    if settings.noauth:
        app.middleware("http")(noauth.guard)
    app.include_router(containers.router)
    app.include_router(actions.router)
    app.include_router(hosts.router)
    app.include_router(registries.router)
    app.include_router(images.router)

    app.add_api_route("/", _v1_document, methods=["GET"])

    return app


def mount(app: FastAPI, ctx: ApiContext, settings: ZunV1Settings | None = None) -> None:
    """Serve `GET /` (the version document) and the v1 API under `/v1` on `app`."""
    v1 = v1_app(ctx, settings or ZunV1Settings())

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> dict[str, Any]:
        return versions.root_document(request)

    @app.get("/v1", include_in_schema=False)
    async def v1_root(request: Request) -> Response:
        """`/v1` itself (the mount serves `/v1/...`), negotiated as the rest of /v1."""
        return await _microversion(request, _v1_document)

    app.mount("/v1", v1)
