"""Reading a branch of a git repository without a work tree: a bare mirror per repository,
fetched each interval; files are read at a commit with `git show`.

git runs as a tenant's agent, never as the controller: no shell, `--` before paths, an empty
home of its own (no global or system config, no `~/.ssh` keys, no credential helpers, no
agent), ssh with no identity and no config file, no terminal prompt, and only the policy's
protocols (`GIT_ALLOW_PROTOCOL`). Every run is bounded in time (killed when over) and in the
bytes it may print (killed when over). git's own error text goes to the controller's log only:
a status saying "connection refused" or "not found" would let a tenant probe hosts and ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from pathlib import Path

from zun_controller.errors import PermanentError, TransientError
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


def git_env(home: Path, policy: GitPolicy) -> dict[str, str]:
    """The whole environment of a git run: nothing of the controller's own."""
    ssh = (
        f"ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile=none "
        f"-o IdentityAgent=none -o StrictHostKeyChecking=accept-new "
        f"-o UserKnownHostsFile={home / 'known_hosts'} -o ConnectTimeout=10"
    )
    return {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": ssh,
        "GIT_ALLOW_PROTOCOL": policy.git_protocols,
        "GIT_PROTOCOL_FROM_USER": "0",
    }


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
    *args: str, env: dict[str, str], cwd: Path | None = None, limit: float, max_out: int
) -> str:
    """git's stdout; `TransientError` (message without git's text) when it fails or is too
    slow, `PermanentError("TooLarge")` when it prints more than `max_out` bytes."""
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
        log.warning(
            "git failed", extra={"git": " ".join(args[:2]), "stderr": err.decode(errors="replace")}
        )
        raise TransientError(f"git {args[0]}: {UNREACHABLE}")
    return out.decode(errors="replace")


class Mirror:
    """A bare clone of one repository under `cache`, named by a hash of its URL."""

    def __init__(self, cache: Path, url: str, policy: GitPolicy | None = None) -> None:
        self.url = url
        self.policy = policy or GitPolicy()
        self.dir = cache / hashlib.sha256(url.encode()).hexdigest()[:16]
        self.home = cache / ".home"

    async def _git(self, *args: str, here: bool = True, max_out: int = LISTING_BYTES) -> str:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = git_env(self.home, self.policy)
        cwd = self.dir if here else None
        limit = self.policy.timeout if args[0] in ("clone", "fetch") else self._read_limit
        return await run_git(*args, env=env, cwd=cwd, limit=limit, max_out=max_out)

    @property
    def _read_limit(self) -> float:
        return max(5.0, self.policy.timeout / 10)

    async def fetch(self, branch: str) -> str:
        """Bring the branch up to date; its commit id."""
        self.policy.check(self.url)
        if not (self.dir / "HEAD").exists():
            self.dir.parent.mkdir(parents=True, exist_ok=True)
            await self._git("clone", "--bare", "--quiet", "--", self.url, str(self.dir), here=False)
        refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
        await self._git("fetch", "--quiet", "--prune", "origin", refspec)
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
