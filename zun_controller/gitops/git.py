"""Reading a branch of a git repository without a work tree: a bare mirror per repository,
fetched each interval; files are read at a commit with `git show`."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from zun_controller.errors import PermanentError, TransientError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


async def _git(*args: str, cwd: Path | None = None, limit: float = 60.0) -> str:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TransientError(f"git {args[0]} timed out after {limit}s") from None
    if proc.returncode != 0:
        raise TransientError(f"git {args[0]}: {err.decode(errors='replace').strip()}")
    return out.decode()


class Mirror:
    """A bare clone of one repository under `cache`, named by a hash of its URL."""

    def __init__(self, cache: Path, url: str) -> None:
        self.url = url
        self.dir = cache / hashlib.sha256(url.encode()).hexdigest()[:16]

    async def fetch(self, branch: str) -> str:
        """Bring the branch up to date; its commit id."""
        if not (self.dir / "HEAD").exists():
            self.dir.parent.mkdir(parents=True, exist_ok=True)
            await _git("clone", "--bare", "--quiet", self.url, str(self.dir))
        refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
        await _git("fetch", "--quiet", "--prune", "origin", refspec, cwd=self.dir)
        try:
            return (await _git("rev-parse", f"refs/heads/{branch}", cwd=self.dir)).strip()
        except TransientError:
            raise PermanentError("BranchNotFound", f"branch {branch!r} not in {self.url}") from None

    async def manifests(self, commit: str, path: str) -> dict[str, str]:
        """File name (relative to the repository) -> text, for manifests under `path`."""
        prefix = "" if path in ("", ".") else path.rstrip("/") + "/"
        listing = await _git(
            "ls-tree", "-r", "--name-only", commit, "--", prefix or ".", cwd=self.dir
        )
        files = [f for f in listing.splitlines() if f.endswith(MANIFEST_SUFFIXES)]
        texts = await asyncio.gather(*(_git("show", f"{commit}:{f}", cwd=self.dir) for f in files))
        return dict(zip(files, texts, strict=True))
