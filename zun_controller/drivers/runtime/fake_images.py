"""Registries and pulls for `FakeRuntime`, behaving as Docker 20.10 with distribution 2.8 does
where reconcilers can see it (`tests/unit/test_runtime_contract.py` checks both).

A `FakeRegistry` is shared by the fake engines that reach it, as a real one is: `publish`
pushes an image (a new digest each time, so a tag can move), `users` turns on basic auth,
`reachable = False` refuses connections, and `pulls` counts the pulls it served. A pull
answers with the registry's words as the engine relays them: `unauthorized: authentication
required`, `manifest unknown`, `connection refused`. `hold()` makes pulls wait until the event
it returns is set, so concurrent pulls can be observed without sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from zun_controller.drivers.runtime.base import ImageInfo, RegistryAuth
from zun_controller.errors import PermanentError
from zun_controller.models.image import parse_reference

PULL = "ErrImagePull"


@dataclass(frozen=True)
class RemoteImage:
    """What a registry serves for one manifest."""

    digest: str
    labels: Mapping[str, str] = field(default_factory=dict)
    output: bytes = b""
    exit_code: int | None = None
    size: int = 1_986_707


class FakeRegistry:
    def __init__(self, host: str, *, users: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.users = dict(users or {})
        self.reachable = True
        self.pulls: list[str] = []
        self._tags: dict[str, RemoteImage] = {}  # repository:tag -> image
        self._digests: dict[str, RemoteImage] = {}  # repository@digest -> image
        self._gate: asyncio.Event | None = None
        self._counter = itertools.count(1)

    def publish(
        self,
        image: str,
        *,
        labels: Mapping[str, str] | None = None,
        output: bytes = b"",
        exit_code: int | None = None,
    ) -> str:
        """Push `repository:tag` (on this registry's host); returns the manifest digest."""
        ref = parse_reference(image)
        seed = f"{image}/{next(self._counter)}/{output!r}".encode()
        digest = "sha256:" + hashlib.sha256(seed).hexdigest()
        remote = RemoteImage(digest, dict(labels or {}), output, exit_code)
        self._tags[f"{ref.repository}:{ref.tag or 'latest'}"] = remote
        self._digests[f"{ref.repository}@{digest}"] = remote
        return digest

    def hold(self) -> asyncio.Event:
        """Pulls wait from now until the returned event is set."""
        self._gate = asyncio.Event()
        return self._gate

    async def serve(self, image: str, auth: RegistryAuth | None) -> RemoteImage:
        """The manifest a pull of `image` gets, or the registry's refusal."""
        if self._gate is not None:
            await self._gate.wait()
        where = f"pulling {image}"
        if not self.reachable:
            raise PermanentError(
                PULL, f"{where}: dial tcp {self.host}: connect: connection refused"
            )
        if self.users and (auth is None or self.users.get(auth.username) != auth.password):
            raise PermanentError(PULL, f"{where}: unauthorized: authentication required")
        ref = parse_reference(image)
        key = f"{ref.repository}@{ref.digest}" if ref.digest else None
        found = (
            self._digests.get(key)
            if key
            else self._tags.get(f"{ref.repository}:{ref.tag or 'latest'}")
        )
        if found is None:
            raise PermanentError(PULL, f"{where}: manifest unknown: manifest unknown")
        self.pulls.append(image)
        return found


def image_id(remote: RemoteImage) -> str:
    """The engine's id of a pulled image: derived from what it is, as a config digest is."""
    seed = f"{remote.digest}/{remote.output!r}/{sorted(remote.labels.items())}".encode()
    return "sha256:" + hashlib.sha256(seed).hexdigest()


def local_info(image_ref: str, remote: RemoteImage | None, fallback_id: str) -> ImageInfo:
    """`ImageInfo` of a local image: its repo digest when it was pulled."""
    if remote is None:
        return ImageInfo(fallback_id, (), 0)
    repository = parse_reference(image_ref).repository
    return ImageInfo(image_id(remote), (f"{repository}@{remote.digest}",), remote.size)
