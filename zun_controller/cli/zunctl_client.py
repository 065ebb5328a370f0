"""What `zunctl` talks through: its configuration (ZUN_URL, ZUN_TOKEN, ZUN_PROJECT or
~/.config/zun/config.yaml) and a small synchronous client of the REST API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from zun_controller.errors import InvalidError
from zun_controller.models.base import Resource, Scope
from zun_controller.models.safe_yaml import load_one

PREFIX = "/apis/zun.openstack.org/v1alpha1"
CONFIG = Path("~/.config/zun/config.yaml")


class ZunctlError(Exception):
    """A failure worth one line on stderr; `code` is the exit status."""

    def __init__(self, message: str, code: int = 1, status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _config_file(path: Path) -> dict[str, Any]:
    try:
        data = load_one(path.read_text(), str(path))
    except InvalidError as exc:
        raise ZunctlError(str(exc)) from None
    if data is not None and not isinstance(data, dict):
        raise ZunctlError(f"{path}: must be a mapping of url, token, project")
    return data or {}


@dataclass(frozen=True)
class Config:
    url: str
    token: str
    project: str

    @classmethod
    def load(cls, project: str | None = None) -> Config:
        path = Path(os.environ.get("ZUN_CONFIG", str(CONFIG))).expanduser()
        data: dict[str, Any] = {}
        if path.is_file():
            data = _config_file(path)
        url = os.environ.get("ZUN_URL") or data.get("url") or "http://127.0.0.1:7070"
        token = os.environ.get("ZUN_TOKEN") or data.get("token") or ""
        if not token:
            raise ZunctlError(f"no token: set ZUN_TOKEN or 'token:' in {path}")
        project = project or os.environ.get("ZUN_PROJECT") or data.get("project") or "default"
        return cls(str(url).rstrip("/"), str(token), str(project))


def path_of(cls: type[Resource], project: str | None, name: str | None = None) -> str:
    base = PREFIX
    if cls.KIND.scope is Scope.PROJECT and project:
        base += f"/projects/{project}"
    base += f"/{cls.KIND.plural}"
    return f"{base}/{name}" if name else base


def where(cls: type[Resource], name: str, project: str | None, what: str = "") -> str:
    """`containers 'web' <what> in project 'demo'` (no project for cluster-scoped kinds)."""
    scoped = cls.KIND.scope is Scope.PROJECT
    text = f"{cls.KIND.plural} {name!r}" + (f" {what}" if what else "")
    return text + (f" in project {project!r}" if scoped else "")


class Client:
    def __init__(self, config: Config, timeout: float = 30.0) -> None:
        self.config = config
        self.http = httpx.Client(
            base_url=config.url,
            headers={"Authorization": f"Bearer {config.token}"},
            timeout=timeout,
        )

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ZunctlError(f"cannot reach {self.config.url}: {exc}") from None
        if resp.status_code >= 400:
            raise ZunctlError(_reason(resp), status=resp.status_code)
        return resp.json()

    def get(self, cls: type[Resource], name: str, project: str | None) -> dict[str, Any] | None:
        """The record, or None when it does not exist."""
        try:
            data: dict[str, Any] = self.request("GET", path_of(cls, project, name))
        except ZunctlError as exc:
            if exc.status == 404:
                return None
            raise
        return data

    def need(self, cls: type[Resource], name: str, project: str | None) -> dict[str, Any]:
        found = self.get(cls, name, project)
        if found is None:
            raise ZunctlError(where(cls, name, project, "not found"))
        return found

    def stream(self, method: str, path: str, **kw: Any) -> Iterator[bytes]:
        try:
            with self.http.stream(method, path, timeout=None, **kw) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise ZunctlError(_reason(resp), status=resp.status_code)
                yield from resp.iter_bytes()
        except httpx.HTTPError as exc:
            raise ZunctlError(f"cannot reach {self.config.url}: {exc}") from None

    def watch(
        self, path: str, since: str | None = None, selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """The watch events of a collection (of the records `selector` matches), after
        revision `since` (from the start when None: ADDED for every current record first)."""
        params = {"watch": "true"} | ({"resourceVersion": since} if since else {})
        params |= {"labelSelector": selector} if selector else {}
        buf = b""
        for chunk in self.stream("GET", path, params=params):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        message = body.get("message") or resp.text
    except ValueError:
        message = resp.text
    return str(message).splitlines()[0] if message else f"HTTP {resp.status_code}"
