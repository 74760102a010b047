"""`kohya-orch tags` and `captions --stats` on real files: exact output, idempotent edits."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from PIL import Image

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.metadata import read_embedded


def _folder(tmp_path: Path) -> Path:
    for i, caption in enumerate(
        ["hero, black hair, glasses, smile", "hero, black_hair, glasses", "hero", None]
    ):
        Image.new("RGB", (16, 16), "red").save(tmp_path / f"h_{i}.png")
        if caption is not None:
            (tmp_path / f"h_{i}.txt").write_text(caption + "\n", encoding="utf-8")
    return tmp_path


def test_stats(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    result = CliRunner().invoke(cli, ["captions", str(folder), "--stats"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == (
        "TAG         IMAGES  SHARE\n"
        "hero             3   100%\n"
        "glasses          2    67%\n"
        "black hair       1    33%\n"
        "smile            1    33%\n"
        "black_hair       1    33%\n"
        "\n"
        "3 captions, 5 distinct tags.\n"
        "No caption file: 1 image.\n"
        "Trigger 'hero': first in 3, later in 0, missing in 0.\n"
        "The trigger alone: 1 caption: h_2.txt.\n"
    )
    result = CliRunner().invoke(cli, ["captions", str(folder), "--stats", "--json"])
    doc = json.loads(result.stdout)
    assert doc["tags"][1] == {"tag": "glasses", "images": 2, "share": 2 / 3}


def test_replace_dry_run_then_apply_and_again(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    runner = CliRunner()
    args = ["tags", str(folder), "replace", "black_hair", "black hair"]
    before = (folder / "h_1.txt").read_bytes()
    result = runner.invoke(cli, [*args, "--dry-run"], catch_exceptions=False)
    assert result.stdout == (
        "h_0.png: image only (same caption)\n"
        "h_1.png:\n  - hero, black_hair, glasses\n  + hero, black hair, glasses\n"
        "h_2.png: image only (same caption)\n"
        "3 captions of 4 would change; nothing was written.\n"
    )
    assert (folder / "h_1.txt").read_bytes() == before
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.stdout == "3 captions of 4 changed.\n"
    assert (folder / "h_1.txt").read_text(encoding="utf-8") == "hero, black hair, glasses\n"
    assert read_embedded((folder / "h_1.png").read_bytes()).caption == "hero, black hair, glasses"
    assert not (folder / "h_3.txt").exists()  # no caption: left alone
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.stdout == "0 captions of 4 changed.\n"


def test_prune_traits(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    runner = CliRunner()
    runner.invoke(cli, ["tags", str(folder), "replace", "black_hair", "black hair"])
    result = runner.invoke(cli, ["tags", str(folder), "--prune-traits"], catch_exceptions=False)
    assert result.stdout == (
        "  black hair: 2 captions (67%)\n"
        "  glasses: 2 captions (67%)\n"
        "2 traits in at least 50% of the captions; remove them with --apply (the trigger then "
        "learns them).\n"
    )
    assert "glasses" in (folder / "h_0.txt").read_text(encoding="utf-8")
    result = runner.invoke(cli, ["tags", str(folder), "--prune-traits", "--apply"])
    assert result.exit_code == 0
    assert (folder / "h_0.txt").read_text(encoding="utf-8") == "hero, smile\n"
    assert (folder / "h_1.txt").read_text(encoding="utf-8") == "hero\n"


def test_add_first_and_errors(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["tags", str(folder), "add", "solo, smile"], catch_exceptions=False)
    assert result.stdout == "4 captions of 4 changed.\n"
    assert (folder / "h_3.txt").read_text(encoding="utf-8") == "hero, solo, smile\n"
    runner.invoke(cli, ["tags", str(folder), "first", "smile"], catch_exceptions=False)
    assert (folder / "h_1.txt").read_text(
        encoding="utf-8"
    ) == "hero, smile, black_hair, glasses, solo\n"
    result = runner.invoke(cli, ["tags", str(folder)])
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        2,
        "Error: Give one operation (add, remove, replace, first) or --prune-traits.",
    )
    result = runner.invoke(cli, ["tags", str(folder), "add"])
    assert (result.exit_code, result.output) == (
        1,
        "Error: tags add: give at least one tag.\n"
        '  hint: e.g. kohya-orch tags DIR add "glasses, black hair"\n',
    )
