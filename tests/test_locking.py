"""One writer per folder: the lock refuses a second command at once and never outlives its
holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kohya_orchestrator import locking
from kohya_orchestrator.errors import FileSystemError, LockError
from kohya_orchestrator.locking import LOCK_NAME, folder_lock, leftover_temps

HOLD = """
import sys, time
from pathlib import Path
from kohya_orchestrator.locking import folder_lock
with folder_lock(Path(sys.argv[1]), "caption"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "held\n"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_a_second_command_is_refused_naming_the_holder(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(LockError) as info, folder_lock(tmp_path, "rename"):
            raise AssertionError("the lock was taken twice")
        since = time.strftime("%H:%M:%S", time.localtime(os.stat(tmp_path / LOCK_NAME).st_mtime))
        assert info.value.message == (
            f"another kohya-orch (pid {proc.pid}: caption) is working in {tmp_path} since {since}"
        )
        assert info.value.hint == (
            "Wait until it has finished (or stop it), then run this command again."
        )
    finally:
        _stop(proc)


SLOW_WRITER = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("flocked", flush=True)
time.sleep(0.2)  # the window between taking the flock and writing the record
os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": "caption", "since": 0}).encode(), 0)
time.sleep(60)
"""


def test_a_holder_still_writing_its_record_is_named(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(tmp_path / LOCK_NAME)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "flocked\n"
        with pytest.raises(LockError) as info, folder_lock(tmp_path, "rename"):
            raise AssertionError("the lock was taken twice")
        assert info.value.message.startswith(
            f"another kohya-orch (pid {proc.pid}: caption) is working in {tmp_path} since "
        )
    finally:
        _stop(proc)


def test_a_killed_holder_never_blocks(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    _stop(proc)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == proc.pid
    with folder_lock(tmp_path, "rename"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_clean_release_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    with folder_lock(tmp_path, "caption"):
        assert (tmp_path / LOCK_NAME).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


WRITE_TEMPS = """
import os, sys, time
from pathlib import Path
from kohya_orchestrator import fsutil
from kohya_orchestrator.locking import folder_lock
folder, other = Path(sys.argv[1]), Path(sys.argv[2])
with folder_lock(folder, "export"):
    for where in (folder, other):
        tmp = fsutil.temp_path_for(where / "a.safetensors")
        tmp.write_bytes(b"partial")
    print(fsutil.SESSION_TOKEN, flush=True)
    time.sleep(60)
"""


def test_the_next_holder_removes_exactly_the_temps_a_killed_holder_recorded(
    tmp_path: Path,
) -> None:
    """The temps of a killed run, in every folder it recorded, go; a user's file named
    like a temp, and temps no lock file records, stay."""
    folder, other = tmp_path / "lora", tmp_path / "elsewhere"
    folder.mkdir()
    other.mkdir()
    notes = folder / ".kohya-orch-tmp-my-notes.txt"
    notes.write_text("mine")
    unknown = folder / ".kohya-orch-tmp-0123456789ab-1-old.safetensors"
    unknown.write_text("no record names this token")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITE_TEMPS, str(folder), str(other)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    token = proc.stdout.readline().strip()
    os.kill(proc.pid, signal.SIGKILL)
    _stop(proc)
    left = sorted(p for p in [*folder.iterdir(), *other.iterdir()] if token in p.name)
    assert len(left) == 2
    assert leftover_temps(folder) == sorted(left, key=lambda p: (p.parent != folder, p))
    with folder_lock(folder, "export") as held:
        assert sorted(held.removed) == left
    assert sorted(p.name for p in folder.iterdir()) == sorted([notes.name, unknown.name])
    assert list(other.iterdir()) == []


def test_a_racer_never_holds_a_removed_lock_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A descriptor opened just before a holder released (and removed) the file locks an
    orphan: the taker must notice and lock the file the name leads to."""
    path = tmp_path / LOCK_NAME
    orphan = os.open(path, os.O_RDWR | os.O_CREAT)
    os.unlink(path)
    real_open = os.open
    opened: list[int] = []

    def racing_open(name: object, flags: int, mode: int = 0o777) -> int:
        if not opened:
            opened.append(orphan)
            return orphan  # as if opened before the release
        fd = real_open(name, flags, mode)  # type: ignore[arg-type]
        opened.append(fd)
        return fd

    monkeypatch.setattr(locking.os, "open", racing_open)
    with folder_lock(tmp_path, "caption"):
        monkeypatch.setattr(locking.os, "open", real_open)
        assert len(opened) == 2
        proc = subprocess.run(
            [sys.executable, "-c", HOLD, str(tmp_path)], capture_output=True, text=True, timeout=30
        )
        assert "another kohya-orch" in proc.stderr


def test_a_folder_that_cannot_hold_the_lock_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileSystemError) as info, folder_lock(tmp_path / "missing", "rename"):
        pass
    assert info.value.message == (
        f"Cannot work in {tmp_path / 'missing'}: cannot create the lock file {LOCK_NAME} "
        "there: No such file or directory; nothing was changed."
    )


def test_re_entrant_within_one_process(tmp_path: Path) -> None:
    with folder_lock(tmp_path, "prepare"), folder_lock(tmp_path / ".", "config"):
        pass
    with folder_lock(tmp_path, "again"):
        pass


def test_released_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), folder_lock(tmp_path, "caption"):
        raise RuntimeError("boom")
    with folder_lock(tmp_path, "caption"):
        pass
