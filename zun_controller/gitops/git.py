"""Reading a branch of a git repository without a work tree: a bare mirror per GitRepository,
fetched each interval; files are read at a commit with `git show`.

git runs as a tenant's agent, never as the controller: no shell, `--` before paths, an empty
home of its own (no global or system config, no `~/.ssh` keys, no credential helper of the
controller's, no agent), no terminal prompt, no askpass, and only the policy's protocols
(`GIT_ALLOW_PROTOCOL`). The only credentials it ever has are the GitRepository's own
(`GitAuth`, from a GitSecret of its project):

- https: username and password, answered by a credential helper given in the environment
  (`GIT_CONFIG_COUNT`, never written to the mirror's config) only for the URL's own protocol and
  host, so a redirect elsewhere gets nothing;
- ssh: `-F /dev/null`, `IdentitiesOnly`, `IdentityFile` the secret's key or none, no agent,
  `StrictHostKeyChecking=yes` against the secret's `known_hosts` only (an ssh URL without
  them is refused before git runs: a host key is never accepted unseen). The key and host keys
  are written to a private temporary directory for the one clone or fetch, then removed.

Every run is bounded in time (killed when over) and in the bytes it may print (killed when
over). git's own error text goes to the controller's log only, with the secret's values cut
out: a status saying "connection refused" or "not found" would let a tenant probe hosts and
ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Iterable, Mapping
from pathlib import Path

from zun_controller.errors import PermanentError, TransientError
from zun_controller.gitops.credentials import (
    GitAuth,
    auth_env,
    needs_known_hosts,
    remove_leftovers,
)
from zun_controller.gitops.policy import GitPolicy

log = logging.getLogger(__name__)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
#: bytes of git's stderr kept for the log
STDERR_BYTES = 16 * 1024
#: bytes of a listing or a commit id (`ls-tree`, `rev-parse`)
LISTING_BYTES = 4 * 1024 * 1024
#: `git show` runs at once for one repository
READERS = 4
UNREACHABLE = "the repository could not be fetched (details in the controller's log)"


#: what git's environment sets for every run: no credential helper, prompt or askpass
_NO_HELPERS = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "SSH_ASKPASS": "/bin/false",
    "SSH_ASKPASS_REQUIRE": "never",
    "GIT_PROTOCOL_FROM_USER": "0",
}


def git_env(home: Path, policy: GitPolicy, auth: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a git run: nothing of the controller's own; `auth`: what
    `credentials.auth_env` made of the GitRepository's own secret (default: anonymous, an ssh
    with no key and no known host)."""
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        **_NO_HELPERS,
        "GIT_ALLOW_PROTOCOL": policy.git_protocols,
    }
    env.update(auth if auth is not None else auth_env("", GitAuth(), None))
    return env


def redact(text: str, hidden: Iterable[str]) -> str:
    """`text` with every value of `hidden` (a secret's) replaced by `<redacted>`."""
    for value in sorted((v for v in hidden if v), key=len, reverse=True):
        text = text.replace(value, "<redacted>")
    return text


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes; whether there was more."""
    data = await stream.read(limit + 1)
    chunks = [data]
    size = len(data)
    while data and size <= limit:
        data = await stream.read(limit + 1 - size)
        chunks.append(data)
        size += len(data)
    out = b"".join(chunks)
    return out[:limit], size > limit


async def run_git(
    *args: str,
    env: dict[str, str],
    cwd: Path | None = None,
    limit: float,
    max_out: int,
    hidden: Iterable[str] = (),
) -> str:
    """git's stdout; `TransientError` (message without git's text) when it fails or is too
    slow, `PermanentError("TooLarge")` when it prints more than `max_out` bytes. git's stderr
    goes to the log with the values of `hidden` cut out."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,  # its helpers (ssh, git-remote-https) are killed with it
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(limit):
            (out, too_big), (err, _) = await asyncio.gather(
                _read_capped(proc.stdout, max_out), _read_capped(proc.stderr, STDERR_BYTES)
            )
            if not too_big:
                await proc.wait()
    except TimeoutError:
        raise TransientError(f"git {args[0]} took longer than {limit:g}s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    if too_big:
        raise PermanentError("TooLarge", f"git {args[0]} printed more than {max_out} bytes")
    if proc.returncode != 0:
        stderr = redact(err.decode(errors="replace"), hidden)
        log.warning("git failed", extra={"git": " ".join(args[:2]), "stderr": stderr})
        raise TransientError(f"git {args[0]}: {UNREACHABLE}")
    return out.decode(errors="replace")


def git_home(cache: Path) -> Path:
    """The home git runs with: empty but for a fetch's key files, readable by no one else."""
    return cache / ".home"


def clear_git_home(cache: Path) -> None:
    """Before any fetch of this controller: remove what a crashed fetch left in `git_home`."""
    remove_leftovers(git_home(cache))


class Mirror:
    """A bare clone of one repository under `cache`, named by a hash of its owner (the
    GitRepository's key: two repositories never share a clone, or what one fetched with its
    credentials) and its URL."""

    def __init__(
        self, cache: Path, url: str, policy: GitPolicy | None = None, *, owner: str = ""
    ) -> None:
        self.url = url
        self.policy = policy or GitPolicy()
        self.dir = cache / hashlib.sha256(f"{owner}\n{url}".encode()).hexdigest()[:16]
        self.home = git_home(cache)

    async def _git(
        self,
        *args: str,
        here: bool = True,
        max_out: int = LISTING_BYTES,
        auth: Mapping[str, str] | None = None,
        hidden: Iterable[str] = (),
    ) -> str:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = git_env(self.home, self.policy, auth)
        cwd = self.dir if here else None
        limit = self.policy.timeout if args[0] in ("clone", "fetch") else self._read_limit
        return await run_git(*args, env=env, cwd=cwd, limit=limit, max_out=max_out, hidden=hidden)

    @property
    def _read_limit(self) -> float:
        return max(5.0, self.policy.timeout / 10)

    async def fetch(self, branch: str, auth: GitAuth | None = None) -> str:
        """Bring the branch up to date with `auth` (none: anonymous); its commit id.
        `PermanentError("HostKeysUnknown")` for an ssh URL without known hosts."""
        self.policy.check(self.url)
        auth = auth or GitAuth()
        needs_known_hosts(self.url, auth)
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        with auth.files(self.home) as files:
            env, hidden = auth_env(self.url, auth, files), auth.hidden()
            if not (self.dir / "HEAD").exists():
                self.dir.parent.mkdir(parents=True, exist_ok=True)
                clone = ("clone", "--bare", "--quiet", "--", self.url, str(self.dir))
                await self._git(*clone, here=False, auth=env, hidden=hidden)
            refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
            fetch = ("fetch", "--quiet", "--prune", "origin", refspec)
            await self._git(*fetch, auth=env, hidden=hidden)
        try:
            return (await self._git("rev-parse", f"refs/heads/{branch}")).strip()
        except TransientError:
            raise PermanentError("BranchNotFound", f"branch {branch!r} not in {self.url}") from None

    async def manifests(self, commit: str, path: str) -> dict[str, str]:
        """File name (relative to the repository) -> text, for manifests under `path`; at most
        the policy's number of files, bytes per file and bytes in all."""
        prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
        listing = await self._git("ls-tree", "-r", "--name-only", commit, "--", prefix or ".")
        files = [f for f in listing.splitlines() if f.endswith(MANIFEST_SUFFIXES)]
        if len(files) > self.policy.max_files:
            raise PermanentError("TooLarge", f"more than {self.policy.max_files} manifest files")
        gate = asyncio.Semaphore(READERS)
        texts = await asyncio.gather(*(self._show(commit, f, gate) for f in files))
        if sum(len(t) for t in texts) > self.policy.max_total_bytes:
            raise PermanentError(
                "TooLarge", f"manifests larger than {self.policy.max_total_bytes} bytes in all"
            )
        return dict(zip(files, texts, strict=True))

    async def _show(self, commit: str, name: str, gate: asyncio.Semaphore) -> str:
        try:
            async with gate:
                return await self._git(
                    "show", f"{commit}:{name}", max_out=self.policy.max_file_bytes
                )
        except PermanentError:
            raise PermanentError(
                "TooLarge", f"{name}: larger than {self.policy.max_file_bytes} bytes"
            ) from None
