"""Crash-safe file-system primitives: atomic writes, fsync, temps that are provably ours,
reads that never block on a FIFO, and the stamp that tells a file changed under us.

Temps: every temp file this process makes is named `.kohya-orch-tmp-<token>-<n>-<name>`,
where <token> is random per process (per run of a command). Before a temp is made in a
folder, the listeners (locking.folder_lock registers one) are told the folder, so the lock
file records where this run's temps may be; a later run removes exactly the temps whose
token a killed run recorded, never a user's file that merely starts with the prefix.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TEMP_PREFIX = ".kohya-orch-tmp-"
# os.urandom rather than secrets: importing secrets pulls in hashlib at start-up.
SESSION_TOKEN = os.urandom(6).hex()
_COUNTER = itertools.count(1)
_LISTENERS: list[Callable[[Path], None]] = []
_LISTEN_LOCK = threading.Lock()


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


def add_temp_listener(listener: Callable[[Path], None]) -> None:
    """Call `listener(folder)` before each temp this process makes (folder: a real path)."""
    with _LISTEN_LOCK:
        _LISTENERS.append(listener)


def remove_temp_listener(listener: Callable[[Path], None]) -> None:
    with _LISTEN_LOCK, contextlib.suppress(ValueError):
        _LISTENERS.remove(listener)


def session_temp_prefix(token: str = SESSION_TOKEN) -> str:
    """The start of every temp name the run with `token` makes."""
    return f"{TEMP_PREFIX}{token}-"


def temp_path_for(target: Path) -> Path:
    """A fresh dot-prefixed temporary name in the same folder as `target`, carrying this
    run's token (the listeners hear of the folder first).

    The target's name is appended for people who find a leftover; when that would pass
    NAME_MAX (a legal 250-byte name plus our prefix), it is left out: the token and the
    counter alone make the name unique.
    """
    with _LISTEN_LOCK:
        listeners = list(_LISTENERS)
    if listeners:
        folder = Path(os.path.realpath(target.parent))
        for listener in listeners:
            listener(folder)
    base = f"{session_temp_prefix()}{next(_COUNTER)}"
    name = f"{base}-{target.name}"
    if len(os.fsencode(name)) > NAME_MAX:
        name = base
    return target.with_name(name)


def is_session_temp(name: str, token: str) -> bool:
    """True for a temp name made by the run with `token`."""
    return name.startswith(session_temp_prefix(token))


# -- what a file looked like, and reading only regular files ------------------------------


@dataclass(frozen=True)
class Stamp:
    """A file's identity and state: its inode and size and modification time."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# `atomic_write_bytes(expect=ABSENT)`: the target must still not exist.
ABSENT = Stamp(-1, -1, -1, -1)


class NotRegularFileError(OSError):
    """A path that is a FIFO, socket or device: never opened for reading (it may block)."""


class FileChangedError(OSError):
    """The file changed (or appeared) since it was read; it was left untouched."""


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "something else")


def open_regular(path: Path | str) -> int:
    """Open a regular file (or a link to one) for reading; never blocks on a FIFO.

    IsADirectoryError for a folder, NotRegularFileError for anything else that is not a
    regular file, the OS's error otherwise. The caller closes the descriptor.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(
                errno.EINVAL, f"not a regular file but {_kind(mode)}; not read", os.fspath(path)
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path | str) -> tuple[bytes, Stamp]:
    """The bytes of a regular file and its stamp, read through one descriptor."""
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        data = fh.read()
    return data, Stamp(st.st_dev, st.st_ino, len(data), st.st_mtime_ns)


def read_regular_bytes(path: Path | str) -> bytes:
    return read_regular(path)[0]


def read_regular_text(path: Path | str, encoding: str = "utf-8") -> str:
    return read_regular(path)[0].decode(encoding)


def current_stamp(path: Path | str) -> Stamp:
    """The stamp of `path` now (links followed); ABSENT when nothing is there."""
    try:
        return Stamp.of(os.stat(path))
    except FileNotFoundError:
        return ABSENT if not os.path.lexists(path) else Stamp(0, 0, 0, 0)


# -- atomic writes ------------------------------------------------------------------------


def atomic_write_bytes(
    target: Path,
    data: bytes,
    *,
    mode: int | None = None,
    sync_dir: bool = True,
    expect: Stamp | None = None,
) -> None:
    """Write `data` to `target` so a reader sees the old bytes or the new, never a mix.

    Temp file in the same folder, write, fsync, os.replace, then fsync the folder
    (skip that with sync_dir=False and fsync once per folder at the end of a batch).
    The file mode is kept from an existing target unless `mode` is given. A symlink
    target is followed: the file it points at is replaced and the link stays a link.
    With `expect` (the stamp the file had when it was read, or ABSENT), the target is
    checked once more just before the rename; FileChangedError, nothing replaced, when it
    is not what it was.
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
        if expect is not None and current_stamp(real) != expect:
            raise FileChangedError(
                errno.EAGAIN, "changed since it was read; left untouched", str(target)
            )
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(real.parent)


def atomic_write_text(
    target: Path,
    text: str,
    *,
    mode: int | None = None,
    sync_dir: bool = True,
    expect: Stamp | None = None,
) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(target, text.encode("utf-8"), mode=mode, sync_dir=sync_dir, expect=expect)


def remove_session_temps(folder: Path, token: str) -> list[Path]:
    """Delete the temps the run with `token` left in `folder` (files or links); return them."""
    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in sorted(names):
        if not is_session_temp(name, token):
            continue
        path = folder / name
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                continue
            path.unlink()
            removed.append(path)
    return removed


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
