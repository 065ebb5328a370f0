"""What Zun's clients send besides paths: JSON bodies (an object or 400), boolean query
flags (`true`, `1`, `yes`, `on` in any case; anything else is false), and `limit`/`marker`
pages of a collection (`next` is the URL of the page after, or None)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from zun_controller.api.context import ApiContext
from zun_controller.api.zunv1.errors import ZunV1Error
from zun_controller.api.zunv1.versions import v1_url

MAX_LIMIT = 1000


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


def page(
    request: Request,
    collection: str,
    rows: list[dict[str, Any]],
    marker: str | None,
    limit: int | None,
) -> dict[str, Any]:
    """`{collection: rows after the one whose uuid is `marker`, at most `limit` (1000 at
    most), "next": URL or None}`; 400 for a marker not in `rows`."""
    size = min(limit or MAX_LIMIT, MAX_LIMIT)
    if marker:
        uids = [r["uuid"] for r in rows]
        if marker not in uids:
            raise ZunV1Error(400, f"Marker {marker} could not be found.")
        rows = rows[uids.index(marker) + 1 :]
    shown, more = rows[:size], len(rows) > size
    nxt = None
    if more and shown:
        nxt = f"{v1_url(request)}/{collection}?limit={size}&marker={shown[-1]['uuid']}"
    return {collection: shown, "next": nxt}
