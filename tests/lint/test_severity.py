"""Tests for the severity policy of validate: each class of finding, from a fixture of its own.

An error only where sd-scripts would crash, refuse, or train something other than what the
file says; a warning where the run starts but likely not as meant; a note where sd-scripts
ignores a key whose value changes nothing (README, "What validate reports").
"""
# ruff: noqa: E501  (the expected messages are kept whole, one per line, to grep for them)

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from testpaths import FIXTURES

from kohya_orchestrator.lint.linter import lint, lint_file

SEVERITY = FIXTURES / "severity"

# fixture -> (errors, warnings, notes), exactly; @ROOT@ is the test's folder.
EXPECTED: dict[str, tuple[list[str], list[str], list[str]]] = {
    "batch_size_default": (
        [],
        [],
        [
            "'batch_size' is a dataset config key ([[datasets]]), not an sd-scripts option: sd-scripts ignores it; 1 is train_batch_size's default, sd-scripts uses train_batch_size = 4"
        ],
    ),
    "empty_dataset_config": (
        [
            "'dataset_config' = \"\" is empty: sd-scripts reads it as a path and crashes reading the dataset config (file not found)"
        ],
        [],
        [],
    ),
    "empty_list_args": (
        [],
        [],
        [
            "'optimizer_args' = \"\" is not a list, but sd-scripts reads it as no arguments",
            "'network_args' = \"\" is not a list, but sd-scripts reads it as no arguments",
        ],
    ),
    "empty_required_strings": (
        [
            "'pretrained_model_name_or_path' = \"\" is empty: sd-scripts reads it as a path and crashes loading the model",
            "'vae' = \"\" is empty: sd-scripts reads it as a path and crashes loading the VAE",
            "'network_weights' = \"\" is empty: sd-scripts reads it as a path and crashes loading the network weights",
        ],
        [],
        [],
    ),
    "gui_epoch_with_steps": (
        [],
        [
            "'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it and runs max_train_steps = 1500 steps (the kohya_ss GUI computed them from it); the saved files are numbered by epoch"
        ],
        [],
    ),
    "gui_noise_offset_type": (
        [],
        [
            "'noise_offset_type' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it; it applies noise_offset and multires_noise_iterations whenever they are set, whichever type this names"
        ],
        [],
    ),
    "lr_restart_cycles_set": (
        [
            "'lr_restart_cycles' is lora-scripts' old name, not an sd-scripts option: sd-scripts ignores it"
        ],
        [],
        [],
    ),
    "max_token_length_255": (
        [],
        [
            "'max_token_length' = 255 is not 75, 150 or 225: sd-scripts reads captions in chunks of 75 tokens and uses 225"
        ],
        [],
    ),
    "output_dir_is_file": (
        [
            "'output_dir' = \"@ROOT@/model.safetensors\" is a file: sd-scripts saves the LoRA files in a folder"
        ],
        [],
        [],
    ),
    "reg_is_train": (
        [
            "'reg_data_dir' = \"@ROOT@/img\" is train_data_dir: the training images become regularisation images too"
        ],
        [],
        [],
    ),
    "reg_parent_of_concept": (
        [
            "'reg_data_dir' = \"@ROOT@/img\" holds the concept folder train_data_dir names (7_yh): the training images become regularisation images too",
            "'train_data_dir' = \"@ROOT@/img/7_yh\" has no <repeats>_<name> folder with images: sd-scripts finds nothing to train on",
        ],
        [],
        [],
    ),
    "resume_false": (
        [],
        [],
        [
            "'resume' = false is not a string, but sd-scripts reads it as unset (it tests `if not args.resume`)"
        ],
    ),
    "save_every_n_steps_zero": (
        [
            "'save_every_n_steps' = 0 makes sd-scripts stop with a ZeroDivisionError at the first step"
        ],
        [],
        [],
    ),
    "scheduler_type_with_warmup": (
        [
            'lr_scheduler_type = "CosineAnnealingLR" with lr_warmup_steps = 0.05 makes sd-scripts stop with a ValueError (a custom scheduler takes no warmup steps)'
        ],
        [],
        [],
    ),
    "te_cache_false_sd1": (
        [],
        [],
        [
            "'cache_text_encoder_outputs' = false is not an option of train_network.py: sd-scripts ignores it, and false changes nothing",
            "'cache_text_encoder_outputs_to_disk' = false is not an option of train_network.py: sd-scripts ignores it, and false changes nothing",
        ],
    ),
    "te_cache_to_disk_only": (
        [
            "'cache_text_encoder_outputs_to_disk' (which turns on cache_text_encoder_outputs) cannot be combined with shuffle_caption: cached outputs are computed once, from unshuffled captions (sd-scripts asserts it)",
            "'cache_text_encoder_outputs_to_disk' (which turns on cache_text_encoder_outputs) requires network_train_unet_only = true (sd-scripts asserts it)",
        ],
        [],
        [],
    ),
    "windows_paths": (
        [],
        [],
        [
            "3 Windows paths (pretrained_model_name_or_path, train_data_dir, output_dir): absolute, but not checked on this machine"
        ],
    ),
    "wsl_and_windows_paths": (
        ["'pretrained_model_name_or_path' = \"/mnt/c/models/pony.safetensors\" does not exist"],
        [
            "'pretrained_model_name_or_path' = \"/mnt/c/models/pony.safetensors\" is a WSL path and 'train_data_dir' = \"C:/lora/img\" a Windows drive path: wherever sd-scripts runs, one of them does not exist"
        ],
        ["2 Windows paths (train_data_dir, output_dir): absolute, but not checked on this machine"],
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("severity")
    (root / "model.safetensors").write_bytes(b"stand-in")
    (root / "out").mkdir()
    for i in range(2):
        image = root / "img" / "7_yh" / f"yh_{i}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (512, 512)).save(image)
        image.with_suffix(".txt").write_text("yh", encoding="utf-8")
    return root


def _materialise(name: str, root: Path) -> Path:
    target = root / f"{name}.toml"
    data = (SEVERITY / f"{name}.toml").read_bytes()
    target.write_bytes(data.replace(b"@ROOT@", str(root).encode()))
    return target


def test_every_fixture_is_expected_and_described() -> None:
    names = {p.stem for p in SEVERITY.glob("*.toml")}
    assert names == set(EXPECTED) | {"bom_first_key"}
    readme = (SEVERITY / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}.toml`" in readme


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_class_gives_exact_findings(name: str, root: Path) -> None:
    report = lint_file(_materialise(name, root))
    found = tuple(
        [p.message.replace(str(root), "@ROOT@") for p in problems]
        for problems in (report.errors, report.warnings, report.notes)
    )
    assert found == EXPECTED[name]
    for problem in report.errors + report.warnings + report.notes:
        assert problem.hint, problem


def test_a_bom_is_named_in_the_parse_error(root: Path) -> None:
    path = _materialise("bom_first_key", root)
    report = lint_file(path)
    assert report.messages() == [
        f"{path} starts with a UTF-8 BOM (byte order mark): sd-scripts' parser (toml) stops "
        "there (line 1, column 1): Found invalid character in key name: '['. Try quoting the "
        "key name."
    ]
    assert report.errors[0].hint == (
        "save the file as UTF-8 without BOM (in Notepad: UTF-8, not UTF-8 with BOM)"
    )


def test_a_bom_before_a_key_hides_that_key(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbfpretrained_model_name_or_path = "/m.safetensors"\n')
    report = lint_file(path, check_files=False)
    assert report.errors[0].message == (
        f"{path} starts with a UTF-8 BOM (byte order mark): sd-scripts' parser (toml) reads "
        "the first key as '\\ufeffpretrained_model_name_or_path', so "
        "'pretrained_model_name_or_path' is never read"
    )
    assert report.errors[1].message == (
        "'pretrained_model_name_or_path' is not set: sd-scripts needs the base model to train on"
    )


def test_a_gui_json_file_names_the_import_command(tmp_path: Path) -> None:
    path = tmp_path / "gui.json"
    path.write_text('{"LoRA_type": "Standard", "epoch": 15}', encoding="utf-8")
    report = lint_file(path)
    assert [(p.message, p.hint) for p in report.errors] == [
        (
            f"{path} is a kohya_ss GUI file (JSON), not a training TOML: sd-scripts reads only "
            "TOML with --config_file",
            f"use `kohya-orch import {path}` to turn it into kohya-orch settings, or validate "
            "the TOML the GUI generated from it",
        )
    ]


@pytest.mark.parametrize(
    ("value", "used"), [(76, 75), (151, 150), (200, 150), (226, 225), (255, 225), (300, 300)]
)
def test_max_token_length_is_cut_in_chunks_of_75(value: int, used: int) -> None:
    report = lint({"max_token_length": value}, check_files=False)
    assert [p.message for p in report.warnings if p.key == "max_token_length"] == [
        f"'max_token_length' = {value} is not 75, 150 or 225: sd-scripts reads captions in "
        f"chunks of 75 tokens and uses {used}"
    ]


def test_another_scripts_key_is_a_warning_and_an_unknown_one_an_error() -> None:
    report = lint(
        {"guidance_scale": 3.5, "gradient_checkpointng": True},
        script="sd3_train_network.py",
        check_files=False,
    )
    assert [p.message for p in report.warnings if p.key == "guidance_scale"] == [
        "'guidance_scale' is an option of flux_train_network.py, not of sd3_train_network.py: "
        "sd-scripts ignores it here"
    ]
    assert [p.message for p in report.errors if p.key == "gradient_checkpointng"] == [
        "unknown key 'gradient_checkpointng': sd-scripts ignores it silently"
    ]


def test_a_closed_pipe_is_not_a_disk_error(tmp_path: Path) -> None:
    # `kohya-orch validate FILE | head -1`: the reader is gone before the output is written.
    import os
    import subprocess
    import sys

    path = tmp_path / "config.toml"
    path.write_text("max_train_epochs = 2\n", encoding="utf-8")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "kohya_orchestrator", "validate", str(path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert run.returncode == 141
    assert "Free some space" not in run.stderr
    assert "Broken pipe" not in run.stderr


def test_lora_scripts_model_type_is_a_note() -> None:
    report = lint({"model_train_type": "sdxl-lora"}, check_files=False)
    assert [(p.message, p.hint) for p in report.notes] == [
        (
            "'model_train_type' is lora-scripts' model type, not an sd-scripts option: "
            "sd-scripts ignores it; the script that runs decides the model "
            "(sdxl_train_network.py here)",
            "keep it for lora-scripts, or remove it",
        )
    ]
    assert not [p for p in report.errors + report.warnings if p.key == "model_train_type"]
