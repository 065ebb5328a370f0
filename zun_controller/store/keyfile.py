"""The encryption key file: the AES-256 keys the store seals credentials with, by key id.

Format (YAML; JSON is YAML too), newest key first:

    keys:
      - id: k2
        secret: <base64 of 32 random bytes>
      - id: k1
        secret: <base64 of 32 random bytes>

- The first key seals every new write; every listed key opens values sealed under it.
- An id is 1-63 characters of letters, digits, `.`, `_`, `-` (it is written in clear before
  each sealed value); ids are unique.
- The file must be a regular file that neither group nor others may read (mode 0600 or 0400):
  it is refused otherwise, as ssh refuses a private key.
- Every problem is a `KeyFileError` naming the file, what is wrong and what to do.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zun_controller.errors import InvalidError, ZunError
from zun_controller.models.safe_yaml import load_one

KEY_BYTES = 32
#: a key file is a handful of lines; anything larger is not one
MAX_FILE_BYTES = 64 * 1024
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


class KeyFileError(ZunError):
    """The key file is missing, unreadable, too open or malformed; the message says the fix."""


@dataclass(frozen=True)
class DataKey:
    id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    """Keys by id; `newest` (the first listed) seals, any of them opens."""

    keys: tuple[DataKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyFileError("a key ring needs at least one key")

    @property
    def newest(self) -> DataKey:
        return self.keys[0]

    def get(self, key_id: str) -> DataKey | None:
        return next((k for k in self.keys if k.id == key_id), None)

    @property
    def ids(self) -> list[str]:
        return [k.id for k in self.keys]


def load_key_file(path: Path) -> KeyRing:
    """The key ring a key file holds; `KeyFileError` saying what is wrong and what to do."""
    text = _read_private(path)
    try:
        doc = load_one(text, str(path))
    except InvalidError as exc:
        raise KeyFileError(f"key file {path}: not YAML: {exc}") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeyFileError(
            f"key file {path}: needs a non-empty list `keys` of {{id, secret}} entries"
        )
    keys = tuple(_entry(path, i, e) for i, e in enumerate(entries))
    ids = [k.id for k in keys]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise KeyFileError(f"key file {path}: key id {dup!r} is listed twice; ids are unique")
    return KeyRing(keys)


def _read_private(path: Path) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(
            f"key file {path} does not exist; make one with `zun-controller keygen {path}`"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise KeyFileError(
            f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or others may "
            f"read it; run `chmod 600 {path}` (and consider the keys in it exposed)"
        )
    if info.st_size > MAX_FILE_BYTES:
        raise KeyFileError(f"key file {path} is over {MAX_FILE_BYTES} bytes; not a key file")
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"key file {path}: cannot read it: {exc}") from None


def _entry(path: Path, index: int, entry: Any) -> DataKey:
    where = f"key file {path}: keys[{index}]"
    if not isinstance(entry, dict) or set(entry) != {"id", "secret"}:
        raise KeyFileError(f"{where}: must be an object with exactly `id` and `secret`")
    key_id, secret = entry["id"], entry["secret"]
    if not isinstance(key_id, str) or not _ID.fullmatch(key_id):
        raise KeyFileError(
            f"{where}.id: must be 1-63 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    try:
        raw = base64.b64decode(secret, validate=True) if isinstance(secret, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != KEY_BYTES:
        raise KeyFileError(
            f"{where} ({key_id}).secret: must be base64 of {KEY_BYTES} random bytes "
            "(`head -c 32 /dev/urandom | base64`)"
        )
    return DataKey(key_id, raw)


def new_key(key_id: str) -> DataKey:
    if not _ID.fullmatch(key_id):
        raise KeyFileError(f"key id {key_id!r}: must be 1-63 letters, digits, '.', '_' or '-'")
    return DataKey(key_id, secrets.token_bytes(KEY_BYTES))


def dump_key_file(ring: KeyRing) -> str:
    lines = [
        "# zun-controller encryption keys: the first seals new writes, every one listed opens",
        "# values sealed under it (zun_controller/store/README.md, docs/security.md).",
        "keys:",
    ]
    for key in ring.keys:
        lines += [f"  - id: {key.id}", f"    secret: {base64.b64encode(key.secret).decode()}"]
    return "\n".join(lines) + "\n"


def write_key_file(path: Path, ring: KeyRing) -> None:
    """Write `ring` to `path` with mode 0600, atomically (a reader sees the old or new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, dump_key_file(ring).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def add_key(path: Path, key_id: str, *, first: bool = True) -> KeyRing:
    """Add a new random key to the key file at `path` (made when absent): first, so it seals
    from the next start on, or last, so every process can open it before any seals with it."""
    ring = load_key_file(path) if path.exists() else None
    key = new_key(key_id)
    if ring is None:
        ring = KeyRing((key,))
    elif ring.get(key_id) is not None:
        raise KeyFileError(f"key file {path}: key id {key_id!r} exists; choose a new id")
    else:
        ring = KeyRing((key, *ring.keys) if first else (*ring.keys, key))
    write_key_file(path, ring)
    return ring
