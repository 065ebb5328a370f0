"""What a GitRepository may point at and how much of it the controller reads: an admin's
settings (`GitPolicy`, from the controller's command line), checked before git runs.

Schemes: `https` and `ssh` by default (`user@host:path` counts as ssh). `http`, `git`, `file`
(and local paths, which git reads as files) only when an admin adds them; git's
`transport::address` helpers (`ext::`, ...) never. The allowed list is also handed to git
(`GIT_ALLOW_PROTOCOL`), so a submodule or a redirect cannot leave it either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from zun_controller.errors import PermanentError

DEFAULT_SCHEMES = frozenset({"https", "ssh"})
KNOWN_SCHEMES = frozenset({"https", "ssh", "http", "git", "file"})
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?!//)")


@dataclass(frozen=True)
class GitPolicy:
    #: URL schemes a GitRepository may use
    schemes: frozenset[str] = field(default_factory=lambda: DEFAULT_SCHEMES)
    #: bytes of one manifest file read from the repository
    max_file_bytes: int = 1024 * 1024
    #: manifest files read at one commit
    max_files: int = 1000
    #: bytes of every manifest file at one commit together
    max_total_bytes: int = 16 * 1024 * 1024
    #: seconds a clone or fetch may take (a file read gets a tenth of it, at least 5 s)
    timeout: float = 120.0

    @classmethod
    def allowing(cls, schemes: str) -> GitPolicy:
        """From an admin's comma-separated list (`https,ssh,file`); unknown names refused."""
        names = frozenset(s.strip().lower() for s in schemes.split(",") if s.strip())
        unknown = sorted(names - KNOWN_SCHEMES)
        if unknown:
            raise ValueError(f"unknown git URL schemes {unknown}; known: {sorted(KNOWN_SCHEMES)}")
        return cls(schemes=names or DEFAULT_SCHEMES)

    @property
    def git_protocols(self) -> str:
        """`GIT_ALLOW_PROTOCOL`'s value: git's protocol names for the allowed schemes."""
        return ":".join(sorted(self.schemes))

    def check(self, url: str) -> None:
        """`PermanentError("URLNotAllowed")` unless the scheme is allowed and the host sane."""
        scheme, host = url_scheme(url)
        if scheme not in self.schemes:
            allowed = ", ".join(sorted(self.schemes))
            raise PermanentError(
                "URLNotAllowed", f"spec.url: scheme {scheme!r} is not allowed (allowed: {allowed})"
            )
        if host.startswith("-"):
            raise PermanentError("URLNotAllowed", "spec.url: a host may not start with '-'")


def url_scheme(url: str) -> tuple[str, str]:
    """(scheme, host) as git would read `url`: a local path is `file`, `transport::x` is
    `transport` (never allowed), `user@host:path` is `ssh`."""
    if "::" in url.split("/", 1)[0]:
        return url.split("::", 1)[0].lower() + "::", ""
    if "://" in url:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname or ""
    scp = _SCP_LIKE.match(url)
    if scp and not url.startswith(("/", ".")):
        return "ssh", scp.group("host")
    return "file", ""
