"""Crash-safe file-system primitives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kohya_orchestrator.fsutil import (
    NAME_MAX,
    TEMP_PREFIX,
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temps,
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


def test_remove_stale_temps_removes_only_ours(tmp_path: Path) -> None:
    ours = tmp_path / f"{TEMP_PREFIX}abc-a.png"
    ours.write_bytes(b"x")
    theirs = tmp_path / ".other"
    theirs.write_bytes(b"y")
    assert remove_stale_temps(tmp_path) == [ours]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other"]
