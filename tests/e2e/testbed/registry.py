"""Image registries on loopback for e2e tests (hack/registry.sh; docs/registry-testbed.md).

`start_registry(name)` serves a plain registry on a free 127.0.0.1 port; with `tls=True` and a
user and password, a TLS one with htpasswd auth whose CA the machine's engines trust for that
host:port only. `Registry.push(source, repository, tag)` tags a local image into it, pushes and
removes the pushed tag again, so a later pull of it really pulls; it returns the manifest
digest. `Registry.pulls(repository, tag)` counts the pulls it served, from its access log
(the engine's event buffer holds only the last 256 events of everyone's tests: not a count).
Repositories should carry a random part (other sessions share the engine); never remove the
`zun-test/*` tags themselves.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

REPO = Path(__file__).resolve().parents[3]
REGISTRY_SH = REPO / "hack" / "registry.sh"
START_TIMEOUT_S = 120.0


class RegistryTestbedError(RuntimeError):
    """A registry could not be started, or an image not pushed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Registry:
    name: str
    host: str  # 127.0.0.1:PORT
    tls: bool = False
    user: str | None = None
    password: str | None = None
    pushed: list[str] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str] | None:
        if self.user is None or self.password is None:
            return None
        return {"username": self.user, "password": self.password}

    def ref(self, repository: str, tag: str) -> str:
        return f"{self.host}/{repository}:{tag}"

    def push(self, api: Any, source: str, repository: str, tag: str) -> str:
        """Push local `source` as `repository:tag`; the manifest digest (`sha256:...`)."""
        target = f"{self.host}/{repository}"
        api.tag(source, target, tag)
        try:
            items = list(api.push(target, tag, stream=True, decode=True, auth_config=self.auth))
        finally:
            api.remove_image(f"{target}:{tag}")
        errors = [i["error"] for i in items if i.get("error")]
        digests = [i["aux"]["Digest"] for i in items if isinstance(i.get("aux"), dict)]
        if errors or not digests:
            raise RegistryTestbedError(f"push {target}:{tag}: {errors or items[-3:]}")
        self.pushed.append(f"{target}:{tag}")
        return str(digests[-1])

    def log(self) -> str:
        return (Path("/tmp/zun-registry") / self.name / "registry.log").read_text()

    def pulls(self, repository: str, tag: str) -> int:
        """Pulls of `repository:tag` it served: its access log's manifest HEADs (dockerd
        resolves a tag with one HEAD per pull, then GETs by digest what it lacks)."""
        line = f'"HEAD /v2/{repository}/manifests/{tag} HTTP/'
        return sum(line in entry for entry in self.log().splitlines())


def _script(*args: str) -> str:
    proc = subprocess.run(
        [str(REGISTRY_SH), *args],
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RegistryTestbedError(f"registry.sh {' '.join(args)}: {proc.stderr[-2000:]}")
    return proc.stdout.strip()


def start_registry(
    name: str, *, tls: bool = False, user: str | None = None, password: str | None = None
) -> Registry:
    args = ["start", name, str(free_port())]
    if tls:
        args.append("--tls")
    if user is not None and password is not None:
        args += ["--user", user, "--password", password]
    host = _script(*args).splitlines()[-1]
    return Registry(name, host, tls, user, password)


def stop_registry(registry: Registry, api: Any) -> None:
    """Stop it and remove every local image tag of it (pulled by tests)."""
    for image in api.images(name=None):
        for tag in image.get("RepoTags") or ():
            if tag.startswith(f"{registry.host}/"):
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_image(tag)
        for digest in image.get("RepoDigests") or ():
            if digest.startswith(f"{registry.host}/"):
                with contextlib.suppress(docker.errors.APIError):
                    api.remove_image(digest)
    _script("stop", registry.name)
