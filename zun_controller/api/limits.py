"""Bounds on what one caller can make the API server hold: request bodies, long-lived streams
(watches and `log?follow`) and their number per token, exec output and time, v1 log size.

`ApiLimits` is the one settings group (defaults below, `ApiLimits.from_env` for the command
line's `ZUN_API_*` variables). `BodyLimit` is ASGI middleware around the whole application
(REST and `/v1`): a declared `Content-Length` over the limit is answered 413 before any of the
body is kept (the rest of it, up to `DRAIN_BYTES`, is read and dropped so the client sees the
answer), and a body that grows past it while it is read ends the request with 413 too.
`StreamSlots` counts each token's open streams: one too many is a 429 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zun_controller.api.errors import ApiError

MiB = 1024 * 1024
#: bytes of a refused body read and dropped before the 413 is sent; a larger one is cut off
DRAIN_BYTES = 64 * MiB


@dataclass(frozen=True)
class ApiLimits:
    #: bytes of a request body (`ZUN_API_MAX_BODY_BYTES`)
    max_body_bytes: int = MiB
    #: seconds a watch or a log follow stays open at most; a client's `timeoutSeconds` may
    #: shorten it, never lengthen it (`ZUN_API_STREAM_TIMEOUT`)
    stream_timeout: float = 1800.0
    #: watches and log follows one token may hold open at once (`ZUN_API_STREAMS_PER_TOKEN`)
    streams_per_token: int = 10
    #: bytes of an exec's output kept; the rest is cut and the answer says so
    #: (`ZUN_API_EXEC_OUTPUT_BYTES`)
    exec_output_bytes: int = MiB
    #: seconds an exec may run before it is stopped (`ZUN_API_EXEC_TIMEOUT`)
    exec_timeout: float = 60.0
    #: execs (and v1 tops) one token may run at once (`ZUN_API_EXECS_PER_TOKEN`)
    execs_per_token: int = 2
    #: bytes of a v1 `logs` answer, the newest kept (`ZUN_API_LOG_BYTES`)
    log_bytes: int = MiB
    #: lines a v1 `logs` call asks the engine for at most (`ZUN_API_LOG_LINES`)
    log_lines: int = 10_000

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiLimits:
        """Defaults, overridden by `ZUN_API_<FIELD>` variables; a bad value is a ValueError."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"ZUN_API_{f.name.upper()}")
            if raw is not None and raw.strip():
                kind = int if f.type in ("int", int) else float
                value = kind(raw)
                if value <= 0:
                    raise ValueError(f"ZUN_API_{f.name.upper()}: must be positive, got {raw!r}")
                values[f.name] = value
        return cls(**values)

    def stream_seconds(self, asked: float | None) -> float:
        """How long a stream asked to last `asked` seconds (None: as long as allowed) lasts."""
        return self.stream_timeout if asked is None else min(asked, self.stream_timeout)


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


def _status_413(path: str, limit: int) -> bytes:
    message = _too_large(limit)
    if path == "/v1" or path.startswith("/v1/"):
        body: dict[str, Any] = {
            "errors": [
                {
                    "request_id": "",
                    "code": "zun.common.exception.RequestEntityTooLarge",
                    "status": 413,
                    "title": message,
                    "detail": message,
                    "links": [],
                }
            ]
        }
    else:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 413}
        body |= {"reason": "RequestEntityTooLarge", "message": message}
    return json.dumps(body).encode()


class BodyLimit:
    """ASGI middleware: request bodies of at most `limit` bytes."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await _drain(receive, declared)
            await _answer_413(send, _status_413(scope["path"], self.limit))
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if message.get("more_body"):
                        await _drain(receive, DRAIN_BYTES)
                    raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, counted, send)


async def _drain(receive: Receive, declared: int) -> None:
    """Read and drop the rest of a refused body (at most `DRAIN_BYTES`): a client still
    sending when the connection closes would lose the answer to a reset."""
    left = min(declared, DRAIN_BYTES)
    while left > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        left -= len(message.get("body", b""))
        if not message.get("more_body"):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer_413(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StreamSlots:
    """Open streams (or running execs) per token name; `hold` wraps a stream so its slot is
    freed when it ends, `held` is the same for a block."""

    def __init__(self, per_token: int, what: str = "watches or log follows") -> None:
        self.per_token, self.what = per_token, what
        self._open: dict[str, int] = {}

    def open(self, token: str) -> int:
        return self._open.get(token, 0)

    def take(self, token: str) -> None:
        """A slot for `token`, or `ApiError(429)` with `Retry-After` when it holds them all."""
        if self.open(token) >= self.per_token:
            raise ApiError(
                429,
                f"token {token!r} has {self.per_token} {self.what} open already; "
                "close one or retry later",
                reason="TooManyRequests",
                headers={"Retry-After": "5"},
            )
        self._open[token] = self.open(token) + 1

    def give_back(self, token: str) -> None:
        left = self.open(token) - 1
        if left > 0:
            self._open[token] = left
        else:
            self._open.pop(token, None)

    @contextlib.contextmanager
    def held(self, token: str) -> Iterator[None]:
        """A slot for the block (`ApiError(429)` as `take`)."""
        self.take(token)
        try:
            yield
        finally:
            self.give_back(token)

    async def hold(self, token: str, stream: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """`stream`, with the slot `take` gave freed when it ends, fails or is closed."""
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.give_back(token)


async def until(stream: AsyncIterator[bytes], seconds: float) -> AsyncGenerator[bytes, None]:
    """`stream`'s items until it ends or `seconds` have passed; then `stream` is closed.

    Each wait is bounded on its own (not one timeout around the loop, which could fire while
    this generator is suspended at a `yield` and cancel its consumer instead)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while (left := deadline - loop.time()) > 0:
            try:
                chunk = await asyncio.wait_for(anext(stream), left)
            except (StopAsyncIteration, TimeoutError):
                return
            yield chunk
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
