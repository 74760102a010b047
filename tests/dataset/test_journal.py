"""Crash safety of rename: a kill between any two steps, then completion or undo.

Every step of the apply (journal written, each file to its temp name, the folder fsync,
each file to its new name, journal marked applied) is a kill point. Stopping the step
generator after k steps leaves the folder exactly as a kill would (the apply has no
cleanup code to run); a few cases really SIGKILL a child process. After each, every
original file must exist exactly once, byte-identical, under its old or its new name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import pytest

from kohya_orchestrator.dataset import journal as jr
from kohya_orchestrator.dataset.rename import (
    apply_rename,
    complete_pending,
    iter_apply,
    iter_undo,
    plan_folder,
)
from kohya_orchestrator.errors import JournalError

# Old name -> new name; P_3.PNG -> p_3.png differs only by case (one name on macOS).
RENAMES = {
    "café 2.jpg": "p_1.jpg",
    "café 2.txt": "p_1.txt",
    "img 10.JPEG": "p_2.jpeg",
    "img 10.Caption": "p_2.caption",
    "img 10.npz": "p_2.npz",
    "P_3.PNG": "p_3.png",
}
UNTOUCHED = {"notes.md": b"notes"}
MOVES = len(RENAMES)
STEPS = 2 * MOVES + 3  # journal, MOVES to temp, fsync, MOVES to final, journal applied


def contents() -> dict[str, bytes]:
    data = {name: f"bytes of {name}\n".encode() * 3 for name in RENAMES}
    return {**data, **UNTOUCHED}


def make_folder(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = contents()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


def assert_each_once(folder: Path, files: dict[str, bytes]) -> None:
    """Every original is in the folder exactly once (under any name); nothing else is."""
    found = sorted(p.read_bytes() for p in folder.iterdir() if p.name != jr.JOURNAL_NAME)
    assert found == sorted(files.values())


def renamed(files: dict[str, bytes]) -> dict[str, bytes]:
    return {RENAMES.get(name, name): data for name, data in files.items()}


def kill_apply_after(folder: Path, k: int) -> None:
    steps = iter_apply(plan_folder(folder, "p"))
    taken = sum(1 for _ in islice(steps, k))
    assert taken == k
    del steps  # abandoned: no code of the apply runs after the kill point


def test_step_count_is_what_the_kill_points_assume(tmp_path: Path) -> None:
    make_folder(tmp_path)
    assert sum(1 for _ in iter_apply(plan_folder(tmp_path, "p"))) == STEPS


@pytest.mark.parametrize("k", range(STEPS + 1))
def test_killed_apply_is_completed_by_the_next_run(tmp_path: Path, k: int) -> None:
    files = make_folder(tmp_path)
    kill_apply_after(tmp_path, k)
    assert_each_once(tmp_path, files)
    journal = complete_pending(tmp_path)
    assert (journal is None) == (k in (0, STEPS))
    assert_each_once(tmp_path, files)
    expected = files if k == 0 else renamed(files)
    assert visible(tmp_path) == expected
    apply_rename(plan_folder(tmp_path, "p"))  # the run itself goes on after completing
    assert visible(tmp_path) == renamed(files)
    assert jr.read_journal(tmp_path) is not None


@pytest.mark.parametrize("k", range(1, STEPS + 1))
def test_killed_apply_is_reversed_by_undo(tmp_path: Path, k: int) -> None:
    files = make_folder(tmp_path)
    kill_apply_after(tmp_path, k)
    for _ in iter_undo(tmp_path):
        pass
    assert visible(tmp_path) == files
    assert_each_once(tmp_path, files)
    assert jr.read_journal(tmp_path).state == jr.UNDONE  # type: ignore[union-attr]
    with pytest.raises(JournalError) as info:
        list(iter_undo(tmp_path))
    assert info.value.message == (
        f"Nothing to undo in {tmp_path}: the last rename was already undone."
    )


def test_kill_during_recovery_at_every_step_then_recover_again(tmp_path: Path) -> None:
    # Every (kill point of the apply, kill point of the recovery) pair, both directions.
    for k in range(1, STEPS):
        for forward in (True, False):
            for j in range(STEPS):
                folder = tmp_path / f"{k}-{j}-{forward}"
                files = make_folder(folder)
                kill_apply_after(folder, k)
                journal = jr.read_journal(folder)
                assert journal is not None
                list(islice(jr.finish(folder, journal, forward=forward), j))
                assert_each_once(folder, files)
                if forward:
                    complete_pending(folder)  # what the next `rename` run does first
                elif jr.read_journal(folder).state != jr.UNDONE:  # type: ignore[union-attr]
                    list(iter_undo(folder))  # `--undo` again
                assert visible(folder) == (renamed(files) if forward else files), (k, j)
                assert_each_once(folder, files)


@pytest.mark.parametrize("k", range(STEPS + 1))
def test_killed_undo_is_completed_by_the_next_run(tmp_path: Path, k: int) -> None:
    files = make_folder(tmp_path)
    apply_rename(plan_folder(tmp_path, "p"))
    undo_steps = iter_undo(tmp_path)
    list(islice(undo_steps, k))
    del undo_steps
    assert_each_once(tmp_path, files)
    complete_pending(tmp_path)
    assert visible(tmp_path) == (renamed(files) if k == 0 else files)


CHILD = """
import os, signal, sys
from pathlib import Path
from kohya_orchestrator.dataset.rename import iter_apply, plan_folder
folder, k = Path(sys.argv[1]), int(sys.argv[2])
for done, _ in enumerate(iter_apply(plan_folder(folder, "p")), start=1):
    if done == k:
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("k", [1, 2, MOVES + 1, MOVES + 2, MOVES + 3, STEPS - 1])
def test_real_sigkill_between_steps(tmp_path: Path, k: int) -> None:
    files = make_folder(tmp_path)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(k)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert_each_once(tmp_path, files)
    complete_pending(tmp_path)
    assert visible(tmp_path) == renamed(files)


BIG = """
import sys
from pathlib import Path
from kohya_orchestrator.dataset.rename import apply_rename, plan_folder
apply_rename(plan_folder(Path(sys.argv[1]), "p"))
"""


def test_real_sigkill_at_an_arbitrary_moment(tmp_path: Path) -> None:
    files = {f"img {i}.png": b"%d" % i for i in range(3000)}
    files.update({f"img {i}.txt": b"caption %d" % i for i in range(3000)})
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    child = subprocess.Popen([sys.executable, "-c", BIG, str(tmp_path)])
    deadline = time.monotonic() + 30
    while not (tmp_path / jr.JOURNAL_NAME).exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert_each_once(tmp_path, files)
    complete_pending(tmp_path)
    assert_each_once(tmp_path, files)
    assert sorted(visible(tmp_path)) == sorted(
        [f"p_{i:04d}.png" for i in range(1, 3001)] + [f"p_{i:04d}.txt" for i in range(1, 3001)]
    )
    assert visible(tmp_path)["p_0011.txt"] == b"caption 10"  # natural order: img 10 is 11th


def test_undo_refuses_when_a_renamed_file_is_gone(tmp_path: Path) -> None:
    make_folder(tmp_path)
    apply_rename(plan_folder(tmp_path, "p"))
    (tmp_path / "p_1.txt").unlink()
    (tmp_path / "P_3.PNG").write_bytes(b"a new file under an old name")
    before = visible(tmp_path)
    with pytest.raises(JournalError) as info:
        list(iter_undo(tmp_path))
    assert info.value.render() == (
        f"The rename journal in {tmp_path} cannot be reversed; nothing was changed:\n"
        "  - café 2.txt -> p_1.txt: the file is missing under both names\n"
        "  - P_3.PNG -> p_3.png: both names exist now\n"
        "  hint: Put the files listed back under one of their names, then run the command again."
    )
    assert visible(tmp_path) == before


def test_undo_without_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError) as info:
        list(iter_undo(tmp_path))
    assert info.value.message == f"Nothing to undo in {tmp_path}: no rename was recorded there."


def test_damaged_journal_is_reported(tmp_path: Path) -> None:
    (tmp_path / jr.JOURNAL_NAME).write_text('{"version": 1, "state": "applying"')
    with pytest.raises(JournalError) as info:
        complete_pending(tmp_path)
    assert info.value.message.startswith(f"The rename journal {tmp_path / jr.JOURNAL_NAME} is dam")
    bad = {"version": 1, "state": "applying", "token": "t", "moves": [["../x", "t", "y"]]}
    (tmp_path / jr.JOURNAL_NAME).write_text(json.dumps(bad))
    with pytest.raises(JournalError) as info:
        complete_pending(tmp_path)
    assert info.value.message == (
        f"The rename journal {tmp_path / jr.JOURNAL_NAME} is damaged "
        "(not a plain file name: '../x')."
    )


def test_apply_never_overwrites_a_file_that_appears_midway(tmp_path: Path) -> None:
    files = make_folder(tmp_path)
    steps = iter_apply(plan_folder(tmp_path, "p"))
    list(islice(steps, MOVES + 2))  # every file is at its temp name now
    (tmp_path / "p_2.npz").write_bytes(b"intruder")
    with pytest.raises(JournalError) as info:
        list(steps)
    assert info.value.message == (
        f"{tmp_path / 'p_2.npz'} appeared while renaming; it was not overwritten."
    )
    assert (tmp_path / "p_2.npz").read_bytes() == b"intruder"
    (tmp_path / "p_2.npz").unlink()
    complete_pending(tmp_path)
    assert visible(tmp_path) == renamed(files)
