"""One writer per folder: a lock every command that changes files takes on the folder it changes.

`folder_lock(folder, command)` holds an exclusive `fcntl.flock` on `folder/.kohya-orch.lock`
for as long as the command works there. The kernel drops the lock when its holder exits,
however it exits (SIGKILL included), so a lock whose holder died never blocks anyone. A
second command does not wait: it stops at once with a LockError naming the holder (its pid,
its command and since when), read from the lock file. Within one process the lock is
re-entrant, so a command that calls another core function working in the same folder does
not lock itself out.

The lock file is the holder's journal of temps: it records the run's token (see fsutil) and
every folder the run makes a temp in, before the temp exists. A clean release removes the
file (first checking, on taking the lock, that the file locked is still the one the name
leads to, so a command racing a release never holds a lock nobody else sees). A killed
holder leaves its record behind; the next holder removes exactly the temps carrying the
recorded token in the recorded folders, keeping the dead run's record until that is done.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator import fsutil
from kohya_orchestrator.errors import FileSystemError, LockError

LOCK_NAME = ".kohya-orch.lock"
_ATTEMPTS = 20
# A holder writes its record just after taking the flock: a racer that finds the lock taken
# reads again for up to this long before naming the holder without its pid.
_RECORD_WAIT_S = 0.5

# Folders this process holds, by real path.
_HELD: dict[str, HeldLock] = {}


@dataclass
class HeldLock:
    """A lock this process holds: its file, its record, and what taking it cleaned up."""

    folder: Path
    fd: int
    record: dict[str, Any]
    depth: int = 1
    removed: list[Path] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def note_folder(self, folder: Path) -> None:
        """fsutil's temp listener: record `folder` before a temp is made there."""
        text = str(folder)
        with self.guard:
            folders = self.record.setdefault("folders", [])
            if text in folders:
                return
            folders.append(text)
            _write(self.fd, self.record)


def lock_path(folder: Path) -> Path:
    return folder / LOCK_NAME


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 1 << 20, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(fd: int, record: dict[str, Any]) -> None:
    raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
    os.pwrite(fd, raw, 0)
    os.ftruncate(fd, len(raw))
    os.fsync(fd)


def _holder(fd: int) -> dict[str, Any]:
    """The record of the live process holding the lock (it may still be writing it)."""
    deadline = time.monotonic() + _RECORD_WAIT_S
    while True:
        holder = _read(fd)
        pid = holder.get("pid")
        if (isinstance(pid, int) and _alive(pid)) or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)


def busy_message(folder: Path, holder: dict[str, Any]) -> str:
    """`another kohya-orch (pid 123: caption) is working in DIR since 10:04:05`."""
    pid, command, since = holder.get("pid"), holder.get("command"), holder.get("since")
    who = f" (pid {pid}: {command})" if pid and command else ""
    when = ""
    if isinstance(since, int | float):
        when = f" since {dt.datetime.fromtimestamp(since).strftime('%H:%M:%S')}"
    return f"another kohya-orch{who} is working in {folder}{when}"


def _stale(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The temp records (token, folders) a dead holder left: its own and any it inherited."""
    out: list[dict[str, Any]] = []
    for item in [record, *(record.get("stale") or [])]:
        if not isinstance(item, dict):
            continue
        token, folders = item.get("token"), item.get("folders") or []
        if isinstance(token, str) and len(token) >= 8 and isinstance(folders, list):
            out.append({"token": token, "folders": [str(f) for f in folders]})
    return out


def _open_locked(folder: Path, real: str) -> int:
    """A descriptor of the lock file, flock held, still the file the name leads to."""
    path = lock_path(Path(real))
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise FileSystemError(
                f"Cannot work in {folder}: cannot create the lock file {LOCK_NAME} there: "
                f"{exc.strerror or exc}; nothing was changed.",
                "The folder must be writable: fix its permissions (or free some space), "
                "then run the command again.",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockError(
                busy_message(folder, holder),
                "Wait until it has finished (or stop it), then run this command again.",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # a holder released (and removed) it meanwhile: lock the new one
    raise LockError(f"The lock file {path} keeps changing; another program is at work there.")


@contextlib.contextmanager
def folder_lock(folder: Path, command: str) -> Iterator[HeldLock]:
    """Hold the folder's lock while the block runs; LockError at once if another holds it.

    Taking it removes the temps a killed holder recorded (listed in `.removed`)."""
    real = os.path.realpath(folder)
    held = _HELD.get(real)
    if held is not None:
        held.depth += 1
        try:
            yield held
        finally:
            held.depth -= 1
        return
    fd = _open_locked(folder, real)
    try:
        stale = _stale(_read(fd))
        record: dict[str, Any] = {
            "pid": os.getpid(),
            "command": command,
            "since": int(dt.datetime.now().timestamp()),
            "token": fsutil.SESSION_TOKEN,
            "folders": [],
        }
        if stale:
            # Until they are gone, the dead run's temps stay on record (we may be killed too).
            _write(fd, {**record, "stale": stale})
        else:
            _write(fd, record)
        held = HeldLock(Path(real), fd, record)
        for item in stale:
            if item["token"] == fsutil.SESSION_TOKEN:
                continue
            for name in dict.fromkeys([real, *item["folders"]]):
                held.removed += fsutil.remove_session_temps(Path(name), item["token"])
        if stale:
            _write(fd, record)
        _HELD[real] = held
        fsutil.add_temp_listener(held.note_folder)
        try:
            yield held
        finally:
            fsutil.remove_temp_listener(held.note_folder)
            del _HELD[real]
            # Removed while still locked: a racer that opened it re-checks and re-opens.
            with contextlib.suppress(OSError):
                os.unlink(lock_path(Path(real)))
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def leftover_temps(folder: Path) -> list[Path]:
    """The temps a killed run recorded for `folder`'s lock (what taking it would remove);
    none while a live holder works there. Reads only."""
    path = lock_path(Path(os.path.realpath(folder)))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        record = _read(fd)
    finally:
        os.close(fd)
    pid = record.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
        return []
    found: list[Path] = []
    for item in _stale(record):
        for name in dict.fromkeys([str(path.parent), *item["folders"]]):
            with contextlib.suppress(OSError):
                found += [
                    Path(name) / n
                    for n in sorted(os.listdir(name))
                    if fsutil.is_session_temp(n, item["token"])
                ]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
