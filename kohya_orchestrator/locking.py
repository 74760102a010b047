"""One writer per folder: a lock every command that changes files takes on the folder it changes.

`folder_lock(folder, command)` holds an exclusive `fcntl.flock` on `folder/.kohya-orch.lock`
for as long as the command works there. The kernel drops the lock when its holder exits,
however it exits (SIGKILL included), so a lock whose holder died never blocks anyone. A
second command does not wait: it stops at once with a LockError naming the holder (its pid,
its command and since when), read from the lock file. The lock file stays in the folder
(removing it would let a third command lock a different file than the second), and is
emptied when the lock is released. Within one process the lock is re-entrant, so a command
that calls another core function working in the same folder does not lock itself out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from kohya_orchestrator.errors import LockError

LOCK_NAME = ".kohya-orch.lock"

# Folders this process holds, by real path: (file descriptor, depth).
_HELD: dict[str, tuple[int, int]] = {}


def lock_path(folder: Path) -> Path:
    return folder / LOCK_NAME


def _holder(fd: int) -> dict[str, object]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def busy_message(folder: Path, holder: dict[str, object]) -> str:
    """`another kohya-orch (pid 123: caption) is working in DIR since 10:04:05`."""
    pid, command, since = holder.get("pid"), holder.get("command"), holder.get("since")
    who = f" (pid {pid}: {command})" if pid and command else ""
    when = ""
    if isinstance(since, int | float):
        when = f" since {dt.datetime.fromtimestamp(since).strftime('%H:%M:%S')}"
    return f"another kohya-orch{who} is working in {folder}{when}"


@contextlib.contextmanager
def folder_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold the folder's lock while the block runs; LockError at once if another holds it."""
    real = os.path.realpath(folder)
    held = _HELD.get(real)
    if held is not None:
        _HELD[real] = (held[0], held[1] + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[real]
            _HELD[real] = (fd, depth - 1)
        return
    fd = os.open(lock_path(Path(real)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockError(
                busy_message(folder, _holder(fd)),
                "Wait until it has finished (or stop it), then run this command again.",
            ) from None
        info = {
            "pid": os.getpid(),
            "command": command,
            "since": int(dt.datetime.now().timestamp()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        _HELD[real] = (fd, 1)
        try:
            yield
        finally:
            del _HELD[real]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
