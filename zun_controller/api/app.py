"""`create_app`: the FastAPI application over a `RecordStore`, with the token view and the
token usage writer, the quota releaser (and, given an `EventRecorder`, the writer of its
Events) running for the app's lifetime. `/healthz`, `/readyz` and `/openapi.json` need no
token. The document is api/openapi.py's; a request no route takes is api/fallback.py's (405
with Allow, or 404), so that route is added last."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from zun_controller.admission import Admission, AdmissionPolicy
from zun_controller.api import containers, fallback, openapi, routes, tokens, zunv1
from zun_controller.api.auth import Tokens
from zun_controller.api.context import ApiContext
from zun_controller.api.errors import HANDLERS, ApiError, translate
from zun_controller.api.io import ContainerIO, ImageIO
from zun_controller.api.limits import ApiLimits, BodyLimit
from zun_controller.api.release import QuotaReleaser
from zun_controller.api.token_record import DEFAULT_LIFETIME
from zun_controller.engine.events import EventRecorder
from zun_controller.store.records import RecordStore


def create_app(
    store: RecordStore,
    io: ContainerIO | None = None,
    *,
    release: bool = True,
    zun_v1: zunv1.ZunV1Settings | None = None,
    events: EventRecorder | None = None,
    policy: AdmissionPolicy | None = None,
    limits: ApiLimits | None = None,
    images: ImageIO | None = None,
    token_lifetime: timedelta = DEFAULT_LIFETIME,
) -> FastAPI:
    """`images`: the engines' images for `/v1/images` (503 there without it). `events` records
    quota refusals (`QuotaExceeded`); without it they are only answered.
    `policy`: the admission limits (their defaults without it). `limits` bound bodies, streams
    and exec (api/limits.py; its defaults without it). `token_lifetime`: of a token made
    through the API without one."""
    admission = Admission(store, policy, events)
    limits = limits or ApiLimits()
    ctx = ApiContext(
        store=store,
        tokens=Tokens(store.kv, lifetime=token_lifetime),
        admission=admission,
        io=io,
        images=images,
        limits=limits,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(ctx.tokens.view.run())]
        tasks.append(asyncio.create_task(ctx.tokens.usage.run()))
        if release:
            tasks.append(asyncio.create_task(QuotaReleaser(ctx.quota).run()))
        if events is not None:
            tasks.append(asyncio.create_task(events.run()))
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title="Zun controller API", version="v1alpha1", lifespan=lifespan)
    app.state.zun = ctx
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    for exc_type, handler in HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.add_exception_handler(Exception, HANDLERS[ApiError])
    app.include_router(tokens.router)
    app.include_router(containers.router)
    app.include_router(routes.router)
    zunv1.mount(app, ctx, zun_v1)

    @app.get("/healthz", openapi_extra={"security": []})
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", openapi_extra={"security": [], "responses": openapi.errors(503)})
    async def readyz() -> dict[str, Any]:
        try:
            await store.kv.revision()
        except Exception as exc:
            raise translate(exc) from None
        return {"status": "ok"}

    fallback.install(app)
    openapi.install(app)
    return app
