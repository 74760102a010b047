"""Crash-safe file-system primitives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kohya_orchestrator.fsutil import (
    ABSENT,
    NAME_MAX,
    SESSION_TOKEN,
    TEMP_PREFIX,
    FileChangedError,
    NotRegularFileError,
    add_temp_listener,
    atomic_write_bytes,
    atomic_write_text,
    current_stamp,
    read_regular,
    read_regular_bytes,
    remove_session_temps,
    remove_temp_listener,
    temp_path_for,
)


def test_temp_name_keeps_the_target_name_when_it_fits(tmp_path: Path) -> None:
    tmp = temp_path_for(tmp_path / "a.png")
    assert tmp.parent == tmp_path
    assert tmp.name.startswith(TEMP_PREFIX)
    assert tmp.name.endswith("-a.png")


def test_temp_name_of_a_255_byte_name_stays_within_name_max(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 251 + ".png")
    tmp = temp_path_for(target)
    assert len(os.fsencode(tmp.name)) <= NAME_MAX
    assert tmp.name.startswith(TEMP_PREFIX)
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


def test_temp_names_carry_this_runs_token(tmp_path: Path) -> None:
    first, second = temp_path_for(tmp_path / "a.png"), temp_path_for(tmp_path / "a.png")
    assert first.name.startswith(f"{TEMP_PREFIX}{SESSION_TOKEN}-")
    assert first != second


def test_remove_session_temps_removes_only_that_runs_temps(tmp_path: Path) -> None:
    """Only a name with the recorded token is a temp of ours; a user's
    `.kohya-orch-tmp-my-notes.txt` and another run's temps are left alone."""
    ours = tmp_path / f"{TEMP_PREFIX}0123456789ab-1-a.png"
    ours.write_bytes(b"x")
    link = tmp_path / f"{TEMP_PREFIX}0123456789ab-2-b.safetensors"
    link.symlink_to(tmp_path / "gone")
    notes = tmp_path / f"{TEMP_PREFIX}my-notes.txt"
    notes.write_text("mine")
    other = tmp_path / f"{TEMP_PREFIX}ba9876543210-1-a.png"
    other.write_bytes(b"y")
    assert remove_session_temps(tmp_path, "0123456789ab") == [ours, link]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([notes.name, other.name])


def test_temp_listeners_hear_the_folder_first(tmp_path: Path) -> None:
    heard: list[Path] = []
    add_temp_listener(heard.append)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        remove_temp_listener(heard.append)
    assert heard == [tmp_path.resolve()]


def test_a_fifo_is_never_opened_for_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "a.txt"
    os.mkfifo(fifo)
    with pytest.raises(NotRegularFileError) as info:
        read_regular_bytes(fifo)  # would block forever with a plain open()
    assert info.value.strerror == "not a regular file but a named pipe (FIFO); not read"
    with pytest.raises(IsADirectoryError):
        read_regular_bytes(tmp_path)


def test_a_link_to_a_regular_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    data, stamp = read_regular(tmp_path / "link")
    assert data == b"data"
    assert stamp == current_stamp(tmp_path / "real")


def test_expect_refuses_a_file_that_changed_since_it_was_read(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    _, stamp = read_regular(target)
    target.write_text("newer, by someone else")
    with pytest.raises(FileChangedError):
        atomic_write_text(target, "ours", expect=stamp)
    assert target.read_text() == "newer, by someone else"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_expect_absent_never_overwrites_a_file_that_appeared(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("appeared")
    with pytest.raises(FileChangedError):
        atomic_write_text(target, "ours", expect=ABSENT)
    assert target.read_text() == "appeared"
    atomic_write_text(tmp_path / "b.txt", "ours", expect=ABSENT)
    assert (tmp_path / "b.txt").read_text() == "ours"
