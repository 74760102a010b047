"""`kohya-orch tag` end to end: a tiny ONNX model run by real onnxruntime (tests/tinytagger.py).

Default: a stand-in sd-scripts checkout whose tagger script is tinytagger.py (it writes
files as the real script does). Opt-in: SD_SCRIPTS_DIR (checkouts joined with os.pathsep)
and SD_SCRIPTS_PYTHON run the real finetune/tag_images_by_wd14_tagger.py of each tree with
the same tiny model, offline.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from testpaths import TESTS

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.metadata import read_embedded
from kohya_orchestrator.train.tagger import (
    DEFAULT_REPO,
    KNOWN_BUG_HINT,
    TaggerOptions,
    build_tagger_argv,
)

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
import tinytagger

TREES = [Path(p) for p in os.environ.get("SD_SCRIPTS_DIR", "").split(os.pathsep) if p]
PYTHON = os.environ.get("SD_SCRIPTS_PYTHON", "")


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (120, 80), (0, 200, 0)).save(images / "h_1.png")
    Image.new("RGB", (80, 120), (220, 0, 0)).save(images / "h_2.jpg")
    (images / "h_1.txt").write_text("hero, smile\n", encoding="utf-8")
    models = tmp_path / "models"
    tinytagger.build_model(models / DEFAULT_REPO.replace("/", "_"))
    checkout = tmp_path / "sd-scripts"
    (checkout / "finetune").mkdir(parents=True)
    shutil.copyfile(TESTS / "tinytagger.py", checkout / "finetune/tag_images_by_wd14_tagger.py")
    return images, models, checkout


def _tag(images: Path, models: Path, checkout: Path, python: str, *extra: str) -> object:
    args = ["tag", str(images), "hero", "--model-dir", str(models)]
    args += ["--sd-scripts", str(checkout), "--python", python, *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_argv() -> None:
    argv = build_tagger_argv("py", Path("/sd"), Path("/s"), TaggerOptions(), Path("/m"))
    assert argv == [
        "py", "/sd/finetune/tag_images_by_wd14_tagger.py", "/s", "--onnx",
        "--repo_id", "SmilingWolf/wd-vit-tagger-v3", "--model_dir", "/m",
        "--caption_extension", ".wd14.txt", "--thresh", "0.35", "--general_threshold", "0.35",
        "--character_threshold", "0.85", "--batch_size", "1", "--remove_underscore",
    ]  # fmt: skip


def test_tiny_onnx_model_end_to_end(tmp_path: Path) -> None:
    images, models, checkout = _setup(tmp_path)
    before = sorted(p.name for p in images.iterdir())
    result = _tag(images, models, checkout, sys.executable, "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "h_1.png:\n  - hero, smile\n  + hero, smile, solo, green theme, hero (tiny)\n"
        "h_2.jpg:\n  - \n  + hero, solo, red theme\n"
        "2 captions of 2 would change; nothing was written.\n"
    )
    assert sorted(p.name for p in images.iterdir()) == before
    result = _tag(images, models, checkout, sys.executable)
    assert result.stdout == "2 captions of 2 changed.\n"
    assert (images / "h_1.txt").read_text(encoding="utf-8") == (
        "hero, smile, solo, green theme, hero (tiny)\n"
    )
    assert read_embedded((images / "h_2.jpg").read_bytes()).caption == "hero, solo, red theme"
    assert not list(images.glob("*.wd14.txt"))  # the tagger never wrote here
    assert _tag(images, models, checkout, sys.executable).stdout == "0 captions of 2 changed.\n"
    result = _tag(images, models, checkout, sys.executable, "--replace", "--character-tags-first")
    assert (images / "h_1.txt").read_text(
        encoding="utf-8"
    ) == "hero, hero (tiny), solo, green theme\n"
    assert result.exit_code == 0


def test_missing_onnx_and_offline_without_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, _models, checkout = _setup(tmp_path)
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty = tmp_path / "empty"
    result = CliRunner().invoke(
        cli,
        ["tag", str(images), "hero", "--model-dir", str(empty), "--sd-scripts", str(checkout),
         "--python", str(fake)],
    )  # fmt: skip
    where = empty / "SmilingWolf_wd-vit-tagger-v3"
    assert result.exit_code == 1
    assert result.output == (
        "Error: Cannot run the WD14 tagger; nothing was changed:\n"
        f"  - the trainer's Python {fake} cannot import onnx and onnxruntime, which the tagger "
        f"needs with --onnx: install them with `{fake} -m pip install onnx onnxruntime`\n"
        f"  - no cached tagger model: {where / 'model.onnx'}, {where / 'selected_tags.csv'} "
        "missing, and HF_HUB_OFFLINE=1 forbids downloading it: run once online, or "
        "`huggingface-cli download SmilingWolf/wd-vit-tagger-v3 model.onnx selected_tags.csv "
        f"--local-dir {where}`\n"
    )
    assert (images / "h_1.txt").read_text(encoding="utf-8") == "hero, smile\n"


@pytest.mark.skipif(not (TREES and PYTHON), reason="set SD_SCRIPTS_DIR and SD_SCRIPTS_PYTHON")
def test_the_real_tagger_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    trees = [t for t in TREES if (t / "finetune/tag_images_by_wd14_tagger.py").is_file()]
    assert trees
    for i, tree in enumerate(trees):
        (tmp_path / str(i)).mkdir()
        images, models, _ = _setup(tmp_path / str(i))
        result = _tag(images, models, tree, PYTHON, "--character-tags-first")
        if "UnboundLocalError" in result.output:  # sd-scripts main at 48d368fa: its own bug
            assert result.output.endswith(f"  hint: {KNOWN_BUG_HINT}\n"), result.output
            continue
        assert result.exit_code == 0, (tree, result.output)
        assert (images / "h_1.txt").read_text(encoding="utf-8") == (
            "hero, smile, hero (tiny), solo, green theme\n"
        ), tree
        assert (images / "h_2.txt").read_text(encoding="utf-8") == "hero, solo, red theme\n"
