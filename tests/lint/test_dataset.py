"""Tests for lint/dataset.py: dataset configs checked as sd-scripts' ConfigSanitizer does."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from kohya_orchestrator.lint.linter import lint_file


@pytest.fixture
def images(tmp_path: Path) -> Path:
    for folder in ("a", "b", "reg"):
        for i in range(2):
            path = tmp_path / folder / f"{folder}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (512, 512)).save(path)
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _dataset(root: Path, subset_extra: str = "", general_extra: str = "") -> Path:
    return _write(
        root / "dataset.toml",
        '[general]\nshuffle_caption = true\ncaption_extension = ".txt"\n'
        + general_extra
        + "[[datasets]]\nresolution = 512\nbatch_size = 2\n"
        f'[[datasets.subsets]]\nimage_dir = "{root}/a"\nnum_repeats = 5\n{subset_extra}'
        f'[[datasets.subsets]]\nimage_dir = "{root}/b"\nnum_repeats = 3\n'
        f'[[datasets.subsets]]\nimage_dir = "{root}/reg"\nis_reg = true\n',
    )


def test_a_valid_dataset_config(images: Path) -> None:
    report = lint_file(_dataset(images))
    assert (report.script, report.messages()) == ("dataset config", [])
    assert report.contract == (
        "library/config_util.py (dataset config) at sd-scripts 6721028c (kohya_ss v26 pin)"
    )


def test_unknown_keys_and_wrong_types_are_errors(images: Path) -> None:
    path = _dataset(images, 'num_repeat = 2\nflip_aug = "yes"\n', "network_multiplier = 1\n")
    report = lint_file(path)
    assert [p.message for p in report.errors] == [
        "[general]: 'network_multiplier' = 1 must be a float (write 1.0, not 1): sd-scripts "
        "refuses the file",
        "[[datasets]] 1, [[datasets.subsets]] 1: unknown key 'num_repeat': sd-scripts refuses "
        "it (a dataset config allows no other keys)",
        "[[datasets]] 1, [[datasets.subsets]] 1: 'flip_aug' = \"yes\" must be true or false: "
        "sd-scripts refuses the file",
    ]
    assert report.errors[1].hint == "did you mean 'num_repeats'?"


def test_dreambooth_and_fine_tuning_subsets_cannot_mix(images: Path) -> None:
    report = lint_file(_dataset(images, f'metadata_file = "{images}/meta.json"\n'))
    assert report.errors[0].message == (
        "[[datasets]] 1 mixes DreamBooth subsets (image_dir) and fine-tuning subsets "
        "(metadata_file): sd-scripts refuses it"
    )


def test_masks_need_masked_loss_in_the_training_config(images: Path) -> None:
    dataset = _dataset(images, f'conditioning_data_dir = "{images}/b"\n')
    alone = lint_file(dataset)
    assert [p.message for p in alone.warnings] == [
        "[[datasets]] 1, [[datasets.subsets]] 1 has conditioning_data_dir, which sd-scripts "
        "accepts only with masked_loss = true in the training config (unless the training "
        "config sets it)"
    ]
    training = _write(
        images / "train.toml",
        f'pretrained_model_name_or_path = "{images}/a/a_0.png"\noutput_dir = "{images}/out"\n'
        f'network_module = "networks.lora"\ndataset_config = "{dataset}"\nmax_train_epochs = 1\n'
        'output_name = "yh"\nnetwork_dim = 8\n',
    )
    report = lint_file(training, script="sdxl_train_network.py")
    assert [p.message for p in report.errors] == [
        "dataset.toml: [[datasets]] 1, [[datasets.subsets]] 1 has conditioning_data_dir, "
        "which sd-scripts accepts only with masked_loss = true in the training config"
    ]
    with_mask = lint_file(
        training, script="sdxl_train_network.py", launcher_args={"masked_loss": True}
    )
    # With masked_loss, sd-scripts takes mask subsets only when every subset has one.
    assert [p.message for p in with_mask.errors] == [
        "dataset.toml: [[datasets]] 1, [[datasets.subsets]] 1: unknown key "
        "'conditioning_data_dir': sd-scripts refuses it (a dataset config allows no other keys)"
    ]


def test_a_dataset_config_without_resolution(images: Path) -> None:
    path = _write(
        images / "d.toml", f'[[datasets]]\n[[datasets.subsets]]\nimage_dir = "{images}/a"\n'
    )
    report = lint_file(path)
    assert [p.message for p in report.warnings] == [
        "[[datasets]] 1 has no resolution (nor [general], nor the training config): "
        "sd-scripts asserts 'resolution is required' (unless the training config sets it)"
    ]
