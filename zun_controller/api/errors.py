"""The one error shape of the API, and the translation of the package's errors into it.

Every failure is `{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": N,
"reason": "...", "message": "...", "details": {"causes": [{"field": "...", "message": "..."}]}}`
as Kubernetes answers; `details.causes` is present for 422 only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from zun_controller.errors import (
    AlreadyExistsError,
    CompactedError,
    ConflictError,
    DecryptionError,
    FieldError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    TransientError,
    ZunError,
)

log = logging.getLogger(__name__)
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}

#: the JSON schema of `status_body`'s answers, as the OpenAPI document shows them
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Kubernetes' Status: every error answer of the API",
    "properties": {
        "kind": {"const": "Status"},
        "apiVersion": {"const": "v1"},
        "status": {"const": "Failure"},
        "code": {"type": "integer"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "details": {
            "type": "object",
            "properties": {
                "causes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["field", "message"],
                    },
                }
            },
        },
    },
    "required": ["kind", "apiVersion", "status", "code", "reason", "message"],
}


class ApiError(Exception):
    """An answer other than success, with its HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str = "",
        causes: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason or REASONS.get(code, "InternalError")
        self.message = message
        self.causes = causes or []
        #: extra response headers (`Retry-After` of a 429)
        self.headers = headers or {}


def status_body(err: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": err.code,
        "reason": err.reason,
        "message": err.message,
    }
    if err.causes:
        body["details"] = {"causes": [{"field": c.path, "message": c.reason} for c in err.causes]}
    return body


def translate(exc: Exception) -> ApiError:  # noqa: PLR0911 - one case per error class
    """The package's error hierarchy as HTTP answers."""
    match exc:
        case ApiError():
            return exc
        case InvalidError():
            return ApiError(422, str(exc), causes=exc.errors)
        case AlreadyExistsError():
            return ApiError(409, str(exc), reason="AlreadyExists")
        case ConflictError():
            return ApiError(409, str(exc))
        case NotFoundError():
            return ApiError(404, str(exc))
        case ForbiddenError():
            return ApiError(403, str(exc))
        case CompactedError():
            return ApiError(410, str(exc))
        case TransientError():
            return ApiError(503, str(exc))
        case DecryptionError():
            # the operator's key file is wrong; the log names the record, the caller may not
            log.error("stored credential cannot be decrypted", extra={"error": str(exc)})
            return ApiError(500, "a stored credential cannot be decrypted (see the API's log)")
        case _:
            return ApiError(500, f"internal error: {type(exc).__name__}")


def _response(err: ApiError) -> JSONResponse:
    return JSONResponse(status_body(err), status_code=err.code, headers=err.headers or None)


async def on_zun_error(_: Request, exc: Exception) -> JSONResponse:
    return _response(translate(exc))


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _response(ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})))


async def on_request_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation (query strings) in the same shape."""
    assert isinstance(exc, RequestValidationError)
    causes = [FieldError(".".join(str(p) for p in e["loc"]), str(e["msg"])) for e in exc.errors()]
    return _response(ApiError(422, "; ".join(str(c) for c in causes), causes=causes))


HANDLERS = {
    ZunError: on_zun_error,
    ApiError: on_zun_error,
    HTTPException: on_http_error,
    RequestValidationError: on_request_error,
}
