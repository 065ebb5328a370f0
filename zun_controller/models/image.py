"""Image references and pull policies, with Kubernetes' names and defaults.

- A reference is `[host[:port]/]path[:tag][@digest]` in Docker's grammar: the first path
  component is a registry host when it has a `.` or a `:` or is `localhost`; path components
  are lower case; a digest is `sha256:` and 64 hex digits (or `sha512:` and 128).
- `imagePullPolicy` left unset means Kubernetes' default, computed and never stored: `Always`
  for a `:latest` tag or no tag and no digest, else `IfNotPresent` (`effective_policy`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator

from zun_controller.models.base import DNSLabel, Model

#: Docker Hub, as the engine names it when a reference has no host.
DEFAULT_REGISTRY = "docker.io"
_MAX_NAME = 255

_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
    r"(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(?::[0-9]{1,5})?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


class ImagePullPolicy(StrEnum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference; `registry` is where it is pulled from (Docker Hub when unnamed)."""

    registry: str
    repository: str  # as written, host included
    tag: str | None
    digest: str | None

    @property
    def pull_tag(self) -> str:
        """What the engine pulls of the repository: the digest, else the tag (latest)."""
        return self.digest or self.tag or "latest"


def _split_host(name: str) -> tuple[str | None, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def _split_tag(rest: str) -> tuple[str, str | None]:
    head, slash, last = rest.rpartition("/")
    if ":" not in last:
        return rest, None
    last, tag = last.split(":", 1)
    return f"{head}{slash}{last}", tag


def _well_formed(
    name: str, host: str | None, path: str, tag: str | None, digest: str | None
) -> bool:
    return (
        len(name) <= _MAX_NAME
        and (host is None or _DOMAIN.fullmatch(host) is not None)
        and _PATH.fullmatch(path) is not None
        and (tag is None or _TAG.fullmatch(tag) is not None)
        and (digest is None or _DIGEST.fullmatch(digest) is not None)
    )


def parse_reference(text: str) -> ImageReference:
    """The parts of `text`; `ValueError` saying what is wrong when it is not a reference."""
    name, at, digest_part = text.partition("@")
    digest = digest_part if at else None
    host, rest = _split_host(name)
    path, tag = _split_tag(rest)
    if not _well_formed(name, host, path, tag, digest):
        raise ValueError(
            f"{text!r} is not an image reference (host[:port]/path[:tag][@sha256:digest], "
            "path in lower case)"
        )
    repository = f"{host}/{path}" if host else path
    return ImageReference(host or DEFAULT_REGISTRY, repository, tag, digest)


def _valid_reference(text: str) -> str:
    parse_reference(text)
    return text


ImageRef = Annotated[str, AfterValidator(_valid_reference)]


def effective_policy(image: str, policy: ImagePullPolicy | None) -> ImagePullPolicy:
    """The policy that applies: the one set, else Kubernetes' default for the reference."""
    if policy is not None:
        return policy
    ref = parse_reference(image)
    if ref.digest is None and ref.tag in (None, "latest"):
        return ImagePullPolicy.ALWAYS
    return ImagePullPolicy.IF_NOT_PRESENT


class PullSecretRef(Model):
    """A `PullSecret` of the record's own project, by name."""

    name: DNSLabel
