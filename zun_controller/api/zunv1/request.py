"""What Zun's clients send besides paths: JSON bodies (an object or 400) and boolean query
flags (`true`, `1`, `yes`, `on` in any case; anything else is false)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from zun_controller.api.context import ApiContext
from zun_controller.api.zunv1.errors import ZunV1Error


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object (an empty body is `{}`); 400 when it is not one."""
    try:
        data = json.loads(await request.body() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZunV1Error(400, f"The request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ZunV1Error(400, "The request body must be a JSON object")
    return data


def flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.zun
    return ctx
