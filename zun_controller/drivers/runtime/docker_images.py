"""Images on a Docker engine: inspect, list, pull and remove (the `Runtime` port's image calls).

`DockerImages` is a mixin of `DockerRuntime`: it runs its SDK calls through the runtime's
bounded, translated `_call`. A pull is `POST /images/create` streamed in a pool thread that
stops reading at the deadline; the engine reports a registry's refusal either as the HTTP
error of that request or as an `error` item in the stream, and both become
`PermanentError("ErrImagePull", ...)` with the registry's words. Credentials travel only in the
`X-Registry-Auth` header the SDK builds; no message here contains them.

A removal is `DELETE /images/{name}` without force, after a look at every container for those
using the tag (`base.image_users`: the engine itself refuses only for the image's last tag,
naming one container, and untags a tag a container was made by): any is an `InUseError`
naming all of them. A container made between the look and the removal meets the engine's own
409, looked at again the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import docker.errors

from zun_controller.drivers.runtime.base import (
    ImageInfo,
    ImageUser,
    RegistryAuth,
    image_users,
)
from zun_controller.errors import ConflictError, InUseError, NotFoundError, PermanentError

Api = Any

PULL = "ErrImagePull"


def image_info(attrs: Mapping[str, Any]) -> ImageInfo:
    """`ImageInfo` from `GET /images/{name}/json` or an item of `GET /images/json`."""
    tags = [t for t in attrs.get("RepoTags") or () if t != "<none>:<none>"]
    return ImageInfo(
        id=str(attrs["Id"]),
        repo_digests=tuple(d for d in attrs.get("RepoDigests") or () if d != "<none>@<none>"),
        size=int(attrs.get("Size") or 0),
        repo_tags=tuple(tags),
    )


def split_reference(image: str) -> tuple[str, str]:
    """(repository, tag or digest) as the pull API takes them; `latest` when neither."""
    name, at, digest = image.partition("@")
    if at:
        return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name, digest
    head, slash, last = name.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
        return f"{head}{slash}{last}", tag
    return name, "latest"


def _image_user(summary: Mapping[str, Any]) -> ImageUser:
    """An item of `GET /containers/json?all=1` as `image_users` looks at it."""
    names = summary.get("Names") or ["/" + str(summary["Id"])[:12]]
    return ImageUser(
        id=str(summary["Id"]),
        name=str(names[0]).lstrip("/"),
        state=str(summary.get("State") or "unknown"),
        image_id=str(summary.get("ImageID") or ""),
        reference=str(summary.get("Image") or ""),
    )


def _auth_config(auth: RegistryAuth | None) -> dict[str, str] | None:
    if auth is None:
        return None
    return {"username": auth.username, "password": auth.password, "serveraddress": auth.registry}


def _stream_error(item: Mapping[str, Any]) -> str | None:
    error = item.get("error") or (item.get("errorDetail") or {}).get("message")
    return str(error) if error else None


def pull_blocking(api: Api, image: str, auth: RegistryAuth | None, timeout: float) -> None:
    """Pull on the calling thread, reading the progress stream until it ends or the deadline."""
    repository, tag = split_reference(image)
    deadline = time.monotonic() + timeout
    try:
        stream = api.pull(repository, tag, stream=True, decode=True, auth_config=_auth_config(auth))
    except docker.errors.APIError as exc:
        raise PermanentError(PULL, f"pulling {image}: {exc.explanation or exc}") from None
    try:
        for item in stream:
            if (error := _stream_error(item)) is not None:
                raise PermanentError(PULL, f"pulling {image}: {error}")
            if time.monotonic() > deadline:
                raise PermanentError(PULL, f"pulling {image}: not done after {timeout:g} s")
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class DockerImages:
    """The image calls of `DockerRuntime` (which provides `_call`)."""

    _call: Callable[..., Any]

    async def inspect_image(self, image: str) -> ImageInfo | None:
        try:
            attrs = await self._call(lambda api: api.inspect_image(image), f"image {image}")
        except (NotFoundError, PermanentError):
            return None
        return image_info(attrs)

    async def list_images(self) -> list[ImageInfo]:
        found = await self._call(lambda api: api.images(), "images")
        return [image_info(attrs) for attrs in found]

    async def _refusal(self, ref: str, attrs: Mapping[str, Any]) -> InUseError | None:
        found = await self._call(lambda api: api.containers(all=True), "containers")
        last = len([t for t in attrs.get("RepoTags") or () if t != "<none>:<none>"]) <= 1
        return image_users(ref, str(attrs["Id"]), last, (_image_user(c) for c in found))

    async def remove_image(self, image: str) -> None:
        if "@" in image:
            raise PermanentError("InvalidConfig", f"remove {image}: name a tag, not a digest")
        repository, tag = split_reference(image)
        ref = f"{repository}:{tag}"
        try:
            attrs = await self._call(lambda api: api.inspect_image(ref), f"image {ref}")
        except PermanentError as exc:
            if exc.reason != "ImageNotFound":
                raise
            raise NotFoundError(f"No such image: {ref}") from None
        if (refusal := await self._refusal(ref, attrs)) is not None:
            raise refusal
        try:
            await self._call(lambda api: api.remove_image(ref), f"remove image {ref}", retry=False)
        except ConflictError:  # a container made since the look
            if (refusal := await self._refusal(ref, attrs)) is not None:
                raise refusal from None
            raise
        except PermanentError as exc:
            if exc.reason != "ImageNotFound":
                raise
            raise NotFoundError(f"No such image: {ref}") from None

    async def pull_image(self, image: str, auth: RegistryAuth | None, within: float) -> ImageInfo:
        await self._call(
            lambda api: pull_blocking(api, image, auth, within),
            f"pull {image}",
            retry=False,
            extra=within,
        )
        info = await self.inspect_image(image)
        if info is None:
            raise PermanentError(PULL, f"pulling {image}: the engine does not show it after")
        return info
