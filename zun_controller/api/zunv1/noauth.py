"""No-auth mode's guard: with no token to prove who calls, the request itself must come from
this machine, not from a web page a browser on it happens to show.

- `Host` must name a loopback address (`localhost`, `127.0.0.1`, `[::1]`, any port): a DNS
  rebinding attack reaches 127.0.0.1 under the attacker's own name, and is refused.
- `Origin`, when sent (browsers send it on every cross-site POST), must be such a name too, and
  `Sec-Fetch-Site`, when sent, must not be `cross-site`.
- A request with a body must say `Content-Type: application/json` (415 otherwise): an HTML
  form cannot send that without a CORS preflight, which this API never answers.

Answers are Zun's error shape: 403, or 415. `check_listen` refuses to start no-auth mode on any
address other than a loopback one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request, Response

from zun_controller.api.zunv1 import errors
from zun_controller.errors import PermanentError

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
Next = Callable[[Request], Awaitable[Response]]


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine."""
    name = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_listen(address: str) -> None:
    """`PermanentError` unless `address` is a loopback one (no-auth mode's only place)."""
    if not is_loopback(address):
        raise PermanentError(
            "NoAuthNotLoopback",
            f"ZUN_V1_NOAUTH=1 serves anyone who can connect: listen on 127.0.0.1 or ::1, "
            f"not {address or '(every interface)'!r}",
        )


def _host_of(header: str) -> str:
    return urlsplit(f"//{header}").hostname or ""


def refusal(request: Request) -> errors.ZunV1Error | None:
    """Why this request may not act in no-auth mode, or None."""
    host = _host_of(request.headers.get("host", ""))
    if not is_loopback(host):
        return errors.ZunV1Error(403, f"no-auth mode answers only to a loopback Host, not {host!r}")
    origin = request.headers.get("origin")
    if origin is not None and not is_loopback(urlsplit(origin).hostname or ""):
        return errors.ZunV1Error(403, "no-auth mode refuses cross-origin requests")
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return errors.ZunV1Error(403, "no-auth mode refuses cross-site requests")
    if request.method in _BODY_METHODS and _has_body(request) and not _json(request):
        return errors.ZunV1Error(415, "a request body must be Content-Type: application/json")
    return None


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return bool(request.headers.get("transfer-encoding")) or (length not in (None, "", "0"))


def _json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json"


async def guard(request: Request, call_next: Next) -> Response:
    """Middleware of the /v1 app in no-auth mode."""
    refused = refusal(request)
    if refused is not None:
        return await errors.handle(request, refused)
    return await call_next(request)
