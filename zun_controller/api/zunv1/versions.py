"""Microversions of the Zun v1 API and its version documents.

A request names its version with `OpenStack-API-Version: container X.Y` (or `latest`); without
one it gets the minimum, 1.1, as upstream Zun answers. A version outside [1.1, 1.40] is 406, a
malformed header 400. Every answer under /v1 echoes the version it was served at, with
`Vary: OpenStack-API-Version`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from zun_controller.api.zunv1.errors import ZunV1Error

HEADER = "OpenStack-API-Version"
SERVICE = "container"
MIN_VERSION = (1, 1)
MAX_VERSION = (1, 40)
MEDIA_TYPE = "application/vnd.openstack.zun.v1+json"
_VERSION = re.compile(r"^([0-9]+)\.([0-9]+)$")


def render(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _parse_one(text: str) -> tuple[int, int]:
    if text.lower() == "latest":
        return MAX_VERSION
    match = _VERSION.match(text)
    if not match:
        raise ZunV1Error(400, f"Invalid API version format: {text!r}; use X.Y or latest")
    return int(match.group(1)), int(match.group(2))


def negotiate(header: str | None) -> tuple[int, int]:
    """The version a request asks for (the minimum when it names none)."""
    asked: str | None = None
    for item in (header or "").split(","):
        service, _, value = item.strip().partition(" ")
        if service.lower() == SERVICE and value.strip():
            asked = value.strip()
    if asked is None:
        return MIN_VERSION
    version = _parse_one(asked)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise ZunV1Error(
            406,
            f"Version {render(version)} was requested but the minor version is not supported "
            f"by this API: it supports {render(MIN_VERSION)} to {render(MAX_VERSION)}.",
        )
    return version


def echo(version: tuple[int, int]) -> dict[str, str]:
    return {HEADER: f"{SERVICE} {render(version)}", "Vary": HEADER}


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def v1_url(request: Request) -> str:
    """The v1 API's URL as the client reached it (links, Location, next)."""
    return f"{_base(request)}/v1"


def v1_summary(request: Request) -> dict[str, Any]:
    return {
        "id": "v1",
        "links": [{"href": f"{_base(request)}/v1/", "rel": "self"}],
        "status": "CURRENT",
        "min_version": render(MIN_VERSION),
        "max_version": render(MAX_VERSION),
    }


def root_document(request: Request) -> dict[str, Any]:
    """`GET /`: the API's versions, as upstream Zun's root controller answers."""
    v1 = v1_summary(request)
    return {
        "name": "OpenStack Zun API",
        "description": "Zun is an OpenStack project which aims to provide container management.",
        "versions": [v1],
        "default_version": v1,
    }


def v1_document(request: Request) -> dict[str, Any]:
    """`GET /v1`: the v1 API, its media type and the collections it serves."""
    base = f"{_base(request)}/v1"
    return {
        **v1_summary(request),
        "media_types": [
            {"base": "application/json", "type": "application/vnd.openstack.zun.v1+json"}
        ],
        "containers": [
            {"href": f"{base}/containers/", "rel": "self"},
            {"href": f"{_base(request)}/containers/", "rel": "bookmark"},
        ],
        **{
            collection: [
                {"href": f"{base}/{collection}/", "rel": "self"},
                {"href": f"{_base(request)}/{collection}/", "rel": "bookmark"},
            ]
            for collection in ("hosts", "images", "registries")
        },
    }
