"""Tests for dataset_plan: `plan` on a dataset config, against a golden count, and against
sd-scripts' own config_util when SD_SCRIPTS_DIR and SD_SCRIPTS_PYTHON are set (opt-in)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from testpaths import TESTS

from kohya_orchestrator.cli import cli
from kohya_orchestrator.errors import ConfigError
from kohya_orchestrator.train.dataset_plan import count_config_file

TREES = [Path(p) for p in os.environ.get("SD_SCRIPTS_DIR", "").split(os.pathsep) if p]
PYTHON = os.environ.get("SD_SCRIPTS_PYTHON", "")
SIZES = {
    "a": [(512, 512)] * 3 + [(600, 900)] * 2 + [(1200, 800)],
    "b": [(512, 512)] * 2 + [(900, 600)],
    "reg": [(512, 512)] * 4 + [(640, 960)],
}
THREE_SUBSETS = """[general]
enable_bucket = true
caption_extension = ".txt"
[[datasets]]
resolution = 512
batch_size = 2
[[datasets.subsets]]
image_dir = "{root}/a"
num_repeats = 5
[[datasets.subsets]]
image_dir = "{root}/b"
num_repeats = 3
[[datasets.subsets]]
image_dir = "{root}/reg"
is_reg = true
"""
SECOND_DATASET = """[[datasets]]
resolution = [768, 512]
batch_size = 3
[[datasets.subsets]]
image_dir = "{root}/b"
num_repeats = 2
"""
# Counted by sd-scripts' own config_util at 6721028c, 2e0fcc50, 48d368fa and v0.9.1
# (tests/dataset_config_runner.py): 40 batches; with the second dataset 40 + 3.
GOLDEN = {"three_subsets": (40, [40]), "two_datasets": (43, [40, 3])}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for folder, sizes in SIZES.items():
        for i, (w, h) in enumerate(sizes):
            path = tmp_path / folder / f"{folder}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (w, h)).save(path)
    return tmp_path


def _config(root: Path, name: str) -> Path:
    text = THREE_SUBSETS + (SECOND_DATASET if name == "two_datasets" else "")
    path = root / f"{name}.toml"
    path.write_text(text.format(root=root), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_plan_counts_a_dataset_config_like_sd_scripts(root: Path, name: str) -> None:
    plan = count_config_file(_config(root, name))
    assert (plan.batches_per_epoch, [d.batches for d in plan.datasets]) == GOLDEN[name]


@pytest.mark.skipif(not (TREES and PYTHON), reason="set SD_SCRIPTS_DIR and SD_SCRIPTS_PYTHON")
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_count_equals_sd_scripts_own(root: Path, name: str) -> None:
    path = _config(root, name)
    plan = count_config_file(path)
    for tree in TREES:
        run = subprocess.run(
            [PYTHON, str(TESTS / "dataset_config_runner.py"), str(tree), str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        theirs = json.loads(run.stdout.strip().splitlines()[-1])
        assert (theirs["batches"], theirs["datasets"]) == (
            plan.batches_per_epoch,
            [d.batches for d in plan.datasets],
        ), tree


def test_a_training_config_naming_a_dataset_config(root: Path, runner: CliRunner) -> None:
    dataset = _config(root, "two_datasets")
    training = root / "train.toml"
    training.write_text(
        f'dataset_config = "{dataset}"\ntrain_batch_size = 8\nmax_train_epochs = 3\n'
        'output_name = "yh"\nsave_every_n_epochs = 1\nnetwork_dim = 16\n',
        encoding="utf-8",
    )
    plan = count_config_file(training)
    assert (plan.steps_per_epoch, plan.total_steps) == (43, 129)
    assert plan.lora_stems == ["yh-000001", "yh-000002", "yh"]
    result = runner.invoke(cli, ["plan", str(training)], catch_exceptions=False)
    lines = result.output.splitlines()
    assert lines[:3] == [
        f"dataset config {dataset} (sdxl):",
        "  dataset 1: resolution 512,512, batch size 2, buckets on, 40 batches",
        "  dataset 2: resolution 768,512, batch size 3, buckets on, 3 batches",
    ]
    assert "  train 2/b: 3 images x 2 repeats = 6" in lines


def test_a_missing_image_folder_is_named(root: Path) -> None:
    path = root / "bad.toml"
    path.write_text('[[datasets]]\nresolution = 512\n[[datasets.subsets]]\nimage_dir = "/nope"\n')
    with pytest.raises(ConfigError) as info:
        count_config_file(path)
    assert info.value.message == (
        "cannot plan: [[datasets]] 1, subset 1: image_dir /nope is not a folder"
    )
