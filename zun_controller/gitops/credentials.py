"""The credentials of one GitRepository's fetch, from its own project's `GitSecret`, as the
environment of git and ssh: never the controller's own, never on disk longer than one clone
or fetch (after a crash in the middle of one, until the controller starts again:
`remove_leftovers`), never in git's config or arguments (which `ps` shows to every user).

https: a credential helper in the environment (`GIT_CONFIG_COUNT`, after an empty
`credential.helper` that drops any other) answers `get` with the secret's username and
password only for the URL's own protocol and host (a redirect to another host gets nothing);
the values are in git's environment only, which only the controller's user and root can read.
ssh: `GIT_SSH_COMMAND` with no config file, no agent, the secret's key or none, and strict
host key checking against the secret's `known_hosts` or none (so every host is refused).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from zun_controller.errors import PermanentError
from zun_controller.gitops.policy import url_scheme
from zun_controller.models.gitsecret import IDENTITY, KNOWN_HOSTS, PASSWORD, USERNAME, GitSecret

#: a git credential helper (shell): for `get`, the username and password from its environment,
#: only when git asks for the protocol and host in ZUN_GIT_PROTOCOL and ZUN_GIT_HOST
HELPER = (
    '!f() { test "$1" = get || return 0; p=; h=; '
    'while IFS= read -r l && test -n "$l"; do case "$l" in '
    'protocol=*) p="${l#protocol=}";; host=*) h="${l#host=}";; esac; done; '
    'test "$p" = "$ZUN_GIT_PROTOCOL" && test "$h" = "$ZUN_GIT_HOST" || return 0; '
    'printf "username=%s\\npassword=%s\\n" "$ZUN_GIT_USERNAME" "$ZUN_GIT_PASSWORD"; }; f'
)


@dataclass(frozen=True)
class GitAuth:
    """What one fetch may authenticate with; all None: anonymous. Values stay out of repr."""

    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    identity: str | None = field(default=None, repr=False)
    known_hosts: str | None = field(default=None, repr=False)

    @classmethod
    def from_secret(cls, secret: GitSecret) -> GitAuth:
        data = secret.spec.data
        return cls(
            data.get(USERNAME), data.get(PASSWORD), data.get(IDENTITY), data.get(KNOWN_HOSTS)
        )

    def hidden(self) -> tuple[str, ...]:
        """The values to cut out of anything logged: the password and the key's lines."""
        key_lines = [ln.strip() for ln in (self.identity or "").splitlines()]
        return tuple(v for v in (self.password, *key_lines) if v and "-----" not in v)

    @contextlib.contextmanager
    def files(self, parent: Path) -> Iterator[SshFiles]:
        """The key and known hosts as files of a private temporary directory under `parent`
        (mode 0700, files 0600), removed on exit; none written when there are none."""
        if self.identity is None and self.known_hosts is None:
            yield SshFiles()
            return
        with tempfile.TemporaryDirectory(prefix=_PREFIX, dir=parent) as tmp:
            where = Path(tmp)
            yield SshFiles(
                _private(where / "identity", self.identity),
                _private(where / "known_hosts", self.known_hosts),
            )


#: how the temporary directories of `GitAuth.files` are named
_PREFIX = "ssh-"


def remove_leftovers(parent: Path) -> None:
    """Remove the key files a crash in the middle of a fetch left under `parent`."""
    for leftover in parent.glob(f"{_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


@dataclass(frozen=True)
class SshFiles:
    identity: Path | None = None
    known_hosts: Path | None = None


def _private(path: Path, text: str | None) -> Path | None:
    if text is None:
        return None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text if text.endswith("\n") else text + "\n")  # ssh wants the last newline
    return path


def _ssh_path(path: Path | None, default: str) -> str:
    """A path as an ssh option's value: ssh splits `-o` values at blanks unless quoted."""
    return f'"{path}"' if path is not None else default


def ssh_command(files: SshFiles) -> str:
    """`GIT_SSH_COMMAND`: only `files`' key and known hosts (ssh reads `~/.ssh` from the
    passwd entry, not `$HOME`, so each default is overridden here)."""
    options = [
        "BatchMode=yes",
        "IdentitiesOnly=yes",
        f"IdentityFile={_ssh_path(files.identity, 'none')}",
        "IdentityAgent=none",
        "ForwardAgent=no",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={_ssh_path(files.known_hosts, '/dev/null')}",
        "GlobalKnownHostsFile=/dev/null",
        "ConnectTimeout=10",
    ]
    return "ssh -F /dev/null " + " ".join(f"-o {shlex.quote(o)}" for o in options)


def auth_env(url: str, auth: GitAuth, files: SshFiles | None) -> dict[str, str]:
    """The variables git gets for `auth` on `url` (the only place credentials reach git)."""
    helpers = [""]
    env = {"GIT_SSH_COMMAND": ssh_command(files or SshFiles())}
    scheme, _ = url_scheme(url)
    if scheme in ("http", "https") and auth.username is not None and auth.password is not None:
        helpers.append(HELPER)
        env |= {
            "ZUN_GIT_PROTOCOL": scheme,
            "ZUN_GIT_HOST": urlsplit(url).netloc.rpartition("@")[2],
            "ZUN_GIT_USERNAME": auth.username,
            "ZUN_GIT_PASSWORD": auth.password,
        }
    env["GIT_CONFIG_COUNT"] = str(len(helpers))
    for i, helper in enumerate(helpers):
        env[f"GIT_CONFIG_KEY_{i}"] = "credential.helper"
        env[f"GIT_CONFIG_VALUE_{i}"] = helper
    return env


def needs_known_hosts(url: str, auth: GitAuth) -> None:
    """`PermanentError("HostKeysUnknown")` for an ssh URL without the server's host keys."""
    if url_scheme(url)[0] == "ssh" and not auth.known_hosts:
        raise PermanentError(
            "HostKeysUnknown",
            "spec.secretRef: an ssh URL needs a GitSecret with known_hosts (the server's host "
            "keys); a host key is never accepted unseen",
        )
