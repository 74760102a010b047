"""`captions --duplicates` (dataset/duplicates.py): groups, exact output, --move-to journaled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset import duplicates as dp

pytest.importorskip("imagehash")


def _picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    _picture(1).save(folder / "a.png")
    _picture(1).resize((200, 200)).save(folder / "a_small.jpg", quality=80)
    _picture(2).save(folder / "b.png")
    _picture(3).save(folder / "c.webp")
    _picture(3).save(folder / "c_copy.png")
    (folder / "a_small.txt").write_text("hero\n")
    return folder


def test_groups_and_move(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["captions", str(folder), "--duplicates"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"Near-duplicates in {folder} (perceptual hash, at most 6 of 64 bits apart):"
    )
    assert lines[1].startswith("  1. keep a.png; a_small.jpg (distance ")
    assert lines[2] == "  2. keep c.webp; c_copy.png (distance 0)"
    assert lines[3] == (
        "2 groups, 2 extras. Nothing was deleted; --move-to FOLDER moves the extras."
    )
    target = tmp_path / "dupes"
    result = runner.invoke(
        cli, ["captions", str(folder), "--move-to", str(target), "--json"], catch_exceptions=False
    )
    doc = json.loads(result.stdout)
    assert [g["keep"] for g in doc["groups"]] == [str(folder / "a.png"), str(folder / "c.webp")]
    assert sorted(p.name for p in target.iterdir()) == ["a_small.jpg", "a_small.txt", "c_copy.png"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png", "c.webp"]
    result = runner.invoke(cli, ["captions", str(folder), "--duplicates"])
    assert result.stdout.splitlines()[-1] == "0 groups, 0 extras."


def test_stopped_move_is_finished(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    target = tmp_path / "dupes"
    groups, _ = dp.find_duplicates(folder)
    moves = dp.plan_moves(folder, groups, target)
    target.mkdir()
    # As a kill after the journal and the first hard link would leave it.
    (folder / dp.JOURNAL_NAME).write_text(json.dumps({"version": 1, "moves": moves}))
    Path(moves[0][1]).hardlink_to(moves[0][0])
    assert dp.finish_pending(folder) == 3
    assert not (folder / dp.JOURNAL_NAME).exists()
    assert sorted(p.name for p in target.iterdir()) == ["a_small.jpg", "a_small.txt", "c_copy.png"]


def test_clash_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    target = tmp_path / "dupes"
    target.mkdir()
    (target / "c_copy.png").write_bytes(b"mine")
    result = CliRunner().invoke(cli, ["captions", str(folder), "--move-to", str(target)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot move the extras: 1 file(s) already exist in {target}: c_copy.png; "
        "nothing was moved.\n"
        "  hint: Give another --move-to folder, or empty that one.\n"
    )
    assert (folder / "c_copy.png").exists()
