"""A git smart-http server with basic auth on 127.0.0.1, for the credential tests: `git
http-backend` (git's own CGI) under the standard library's WSGI server, in a thread.

`serve(root, user, password)` serves the bare repositories under `root` to that user only and
yields the base URL (`http://127.0.0.1:PORT`); `GitHttp.seen` keeps each request's
Authorization header, so a test can tell what the client sent.
"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class GitHttp:
    """The WSGI app: 401 unless the request carries the user's basic credentials."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        self.root, self.user = root, user
        self.seen: list[str] = []
        self.good = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def __call__(self, environ: dict[str, Any], start: Any) -> Iterable[bytes]:
        self.seen.append(environ.get("HTTP_AUTHORIZATION", ""))
        if self.seen[-1] != self.good:
            start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"')])
            return [b""]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        cgi = {
            "PATH": "/usr/bin:/bin", "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": self.user, "REMOTE_ADDR": "127.0.0.1",
            "PATH_INFO": environ["PATH_INFO"], "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""), "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
        }  # fmt: skip
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=cgi, capture_output=True, check=True
        ).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        headers = [tuple(h.split(": ", 1)) for h in head.decode().split("\r\n") if h]
        status = next((v for k, v in headers if k == "Status"), "200 OK")
        start(status, [(k, v) for k, v in headers if k != "Status"])
        return [rest]


@contextlib.contextmanager
def serve(root: Path, user: str, password: str) -> Iterator[tuple[str, GitHttp]]:
    """The server's base URL and app, serving until the block ends."""
    app = GitHttp(root, user, password)
    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", app
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
