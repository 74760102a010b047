"""One writer per folder: the lock refuses a second command at once and never outlives its
holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kohya_orchestrator.errors import LockError
from kohya_orchestrator.locking import LOCK_NAME, folder_lock

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


def test_a_killed_holder_never_blocks(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    _stop(proc)
    with folder_lock(tmp_path, "rename"):
        assert (tmp_path / LOCK_NAME).read_text().startswith('{"pid": ')
    assert (tmp_path / LOCK_NAME).read_text() == ""


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
