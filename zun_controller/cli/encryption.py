"""Credentials at rest on the command line: `--encryption-key-file` of every process that
opens the store, `zun-controller keygen` (make or extend a key file) and `zun-controller
rewrap` (re-seal every credential under the newest key). The format and rules are
zun_controller/store/keyfile.py's; what is sealed, store/encryption.py's."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from zun_controller.errors import ZunError
from zun_controller.store.encryption import Sealer, SealingKV
from zun_controller.store.etcd import EtcdKV
from zun_controller.store.keyfile import KeyFileError, KeyRing, add_key, load_key_file
from zun_controller.store.rewrap import RewrapSummary, census, rewrap

KeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--encryption-key-file",
        envvar="ZUN_ENCRYPTION_KEY_FILE",
        help="key file sealing Secrets and PullSecrets in etcd (mode 0600; none: stored plain)",
    ),
]
#: `up`'s key file when none is given, made on first start
UP_KEY_FILE = "encryption-keys.yaml"


def load_ring(key_file: Path | None) -> KeyRing | None:
    return load_key_file(key_file) if key_file else None


async def open_kv(url: str, ring: KeyRing | None, call_timeout: float = 5.0) -> SealingKV:
    """The store's KV on etcd at `url`, sealing with `ring`; refuses (`DecryptionError`) when
    etcd holds credentials sealed under keys the ring lacks. Closes the client on failure."""
    raw = EtcdKV.from_url(url, timeout=call_timeout)
    try:
        await raw.revision()
        sealer = Sealer(ring)
        await census(raw, sealer)
    except BaseException:
        await raw.close()
        raise
    return SealingKV(raw, sealer)


def up_key_ring(key_file: Path | None, data_dir: Path, *, embedded: bool) -> KeyRing | None:
    """`up`'s keys: the file given; else, with its embedded etcd, `<data dir>/encryption-keys.yaml`
    (made when absent), so the key lives beside the data it seals; else (`--etcd`) none.

    An outside etcd gets no key of `up`'s making: a container's throwaway data dir would take
    the only key to that etcd's Secrets with it. The made key's id is random, so a key file
    lost and made again is a start refused naming the old id, not values that fail to open."""
    if key_file is not None:
        return load_key_file(key_file)
    if not embedded:
        return None
    path = data_dir / UP_KEY_FILE
    if path.exists():
        return load_key_file(path)
    try:
        return add_key(path, f"up-{secrets.token_hex(3)}")
    except OSError as exc:
        raise KeyFileError(
            f"cannot make the key file {path}: {exc.strerror}; pass --data-dir or "
            "--encryption-key-file"
        ) from None


def _progress(summary: RewrapSummary) -> None:
    print(
        f"rewrap: {summary.scanned} scanned, {summary.rewrapped} rewrapped, "
        f"{summary.sealed_plain} plain sealed, {summary.current} already under "
        f"{summary.key_id or 'no key (plain)'}",
        file=sys.stderr,
        flush=True,
    )


async def _rewrap(etcd: str, ring: KeyRing, page: int, decrypt: bool) -> RewrapSummary:
    raw = EtcdKV.from_url(etcd)
    try:
        await raw.revision()
        sealer = Sealer(ring)
        await census(raw, sealer)
        return await rewrap(raw, sealer, page=page, decrypt=decrypt, progress=_progress)
    finally:
        await raw.close()


def rewrap_command(
    etcd: Annotated[str, typer.Option("--etcd", envvar="ZUN_ETCD")] = "http://127.0.0.1:2379",
    key_file: KeyFileOpt = None,
    page: Annotated[
        int, typer.Option("--page", min=1, max=100, help="values read and written per request")
    ] = 100,
    output: Annotated[str, typer.Option("-o", "--output", help="text or json")] = "text",
    decrypt: Annotated[
        bool,
        typer.Option(
            "--decrypt",
            help="write every value plain instead (to roll back to a release that does not "
            "encrypt; stop every process that has a key file first)",
        ),
    ] = False,
) -> None:
    """Re-encrypt every Secret and PullSecret under the key file's first key (plain ones too).

    Run it after putting a new key first in every process's key file and restarting them;
    then the older keys may be removed. Exits 1 if some values kept changing (run it again).
    """
    if output not in ("text", "json"):
        raise typer.BadParameter("text or json", param_hint="-o")
    try:
        if key_file is None:
            raise ZunError("rewrap needs --encryption-key-file (ZUN_ENCRYPTION_KEY_FILE)")
        summary = asyncio.run(_rewrap(etcd, load_key_file(key_file), page, decrypt))
    except ZunError as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    if output == "json":
        print(json.dumps(summary.as_json(), indent=2))
    else:
        before = ", ".join(f"{k or '(plain)'}: {n}" for k, n in sorted(summary.before.items()))
        print(
            f"{summary.scanned} values; {summary.rewrapped + summary.sealed_plain} rewritten "
            f"under {f'key {summary.key_id}' if summary.key_id else 'no key (plain)'}; "
            f"before: {before or 'none'}"
        )
    if summary.conflicts:
        print(f"zun-controller: {summary.conflicts} values kept changing: rerun", file=sys.stderr)
        raise typer.Exit(1)


def keygen(
    key_file: Annotated[Path, typer.Argument(help="the key file (made with mode 0600 if absent)")],
    key_id: Annotated[str, typer.Option("--id", help="the new key's id, e.g. k2")],
    last: Annotated[
        bool,
        typer.Option(
            "--last",
            help="add it last (opens, does not seal yet): the first step of a rotation "
            "across several processes",
        ),
    ] = False,
) -> None:
    """Add a new random AES-256 key to a key file, first (it seals from the next start on)."""
    try:
        ring = add_key(key_file, key_id, first=not last)
    except ZunError as exc:
        print(f"zun-controller: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{key_file}: keys {', '.join(ring.ids)} (the first seals new writes)")
