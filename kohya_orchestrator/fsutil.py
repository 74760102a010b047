"""Crash-safe file-system primitives: atomic writes, fsync of files and folders."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TEMP_PREFIX = ".kohya-orch-tmp-"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, creates) to disk. A no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# The longest file name most file systems (APFS, ext4, NTFS) accept, in bytes.
NAME_MAX = 255


def temp_path_for(target: Path) -> Path:
    """A fresh dot-prefixed temporary name in the same folder as `target`.

    The target's name is appended for people who find a leftover; when that would pass
    NAME_MAX (a legal 250-byte name plus our 29 bytes), it is left out: the random token
    alone makes the name unique.
    """
    base = f"{TEMP_PREFIX}{secrets.token_hex(6)}"
    name = f"{base}-{target.name}"
    if len(os.fsencode(name)) > NAME_MAX:
        name = base
    return target.with_name(name)


def atomic_write_bytes(
    target: Path,
    data: bytes,
    *,
    mode: int | None = None,
    sync_dir: bool = True,
) -> None:
    """Write `data` to `target` so a reader sees the old bytes or the new, never a mix.

    Temp file in the same folder, write, fsync, os.replace, then fsync the folder
    (skip that with sync_dir=False and fsync once per folder at the end of a batch).
    The file mode is kept from an existing target unless `mode` is given. A symlink
    target is followed: the file it points at is replaced and the link stays a link.
    """
    real = Path(os.path.realpath(target))
    if mode is None:
        try:
            mode = real.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    tmp = temp_path_for(real)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(real.parent)


def atomic_write_text(
    target: Path, text: str, *, mode: int | None = None, sync_dir: bool = True
) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(target, text.encode("utf-8"), mode=mode, sync_dir=sync_dir)


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temp files this tool left behind in `folder` after a crash; return them."""
    removed = []
    for entry in folder.iterdir():
        if entry.name.startswith(TEMP_PREFIX) and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
