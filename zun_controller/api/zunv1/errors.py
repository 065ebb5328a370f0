"""Errors in upstream Zun's shape: `{"errors": [{"request_id", "code", "status", "title",
"detail", "links"}]}`. python-zunclient shows `title` as the message and `detail` as its detail,
so both carry the reason. Every failure under /v1, including FastAPI's own (a bad query
parameter, an unknown path), is answered in this shape; the package's errors are translated by
the REST API's own table first, so the codes agree with it.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from zun_controller.api.errors import ApiError, translate
from zun_controller.errors import ZunError

_CODES = {
    400: "zun.common.exception.InvalidValue",
    401: "zun.common.exception.NotAuthorized",
    403: "zun.common.exception.PolicyNotAuthorized",
    404: "zun.common.exception.ResourceNotFound",
    405: "zun.common.exception.NotAcceptable",
    406: "zun.common.exception.NotAcceptable",
    409: "zun.common.exception.Conflict",
    501: "zun.common.exception.NotImplemented",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class ZunV1Error(Exception):
    """An answer other than success, in Zun's terms (code names Zun's exception class)."""

    def __init__(self, status: int, detail: str, *, code: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "zun.common.exception.ZunException")


def invalid_state(action: str, uuid_: str, status: str) -> ZunV1Error:
    """409 for an action the container's current status does not allow (Zun's message)."""
    return ZunV1Error(
        409,
        f"Cannot {action} container {uuid_} in {status} state.",
        code="zun.common.exception.InvalidStateException",
    )


def body(err: ZunV1Error, request_id: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "request_id": request_id,
                "code": err.code,
                "status": err.status,
                "title": err.detail or _TITLES.get(err.status, "Error"),
                "detail": err.detail,
                "links": [],
            }
        ]
    }


def _answer(request: Request, err: ZunV1Error) -> JSONResponse:
    request_id = getattr(request.state, "request_id", "") or f"req-{uuid.uuid4()}"
    headers = {"X-Openstack-Request-Id": request_id}
    return JSONResponse(body(err, request_id), status_code=err.status, headers=headers)


def as_zun(exc: Exception) -> ZunV1Error:
    if isinstance(exc, ZunV1Error):
        return exc
    if isinstance(exc, RequestValidationError):
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return ZunV1Error(400, f"Invalid input: {where}")
    if isinstance(exc, HTTPException):
        return ZunV1Error(exc.status_code, str(exc.detail))
    api: ApiError = translate(exc)
    status = 400 if api.code == 422 else api.code
    return ZunV1Error(status, api.message)


async def handle(request: Request, exc: Exception) -> JSONResponse:
    return _answer(request, as_zun(exc))


#: the package's errors and FastAPI's; anything else is a 500 in this shape (and logged)
HANDLED: tuple[type[Exception], ...] = (
    ZunV1Error,
    ZunError,
    ApiError,
    HTTPException,
    RequestValidationError,
    Exception,
)
