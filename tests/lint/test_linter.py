"""Tests for validate: the broken-config corpus, types, GUI names, rules, profiles, the CLI."""
# ruff: noqa: E501  (the expected messages are kept whole, one per line, to grep for them)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from testpaths import FIXTURES

from kohya_orchestrator.cli import cli
from kohya_orchestrator.lint.linter import lint, lint_file
from kohya_orchestrator.sdscripts.contract import load_contract

FIXTURES = FIXTURES / "configs"


def _image(path: Path, w: int = 512, h: int = 512, caption: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (200, 100, 50)).save(path)
    if caption:
        path.with_suffix(".txt").write_text("yh, glasses", encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folders the fixtures point at (@ROOT@)."""
    root = tmp_path_factory.mktemp("project")
    (root / "model.safetensors").write_bytes(b"stand-in")
    (root / "out").mkdir()
    for i in range(3):
        _image(root / "img" / "7_yh" / f"yh_{i}.png")
    _image(root / "img_mixed" / "7_yh" / "yh_0.png")
    _image(root / "img_mixed" / "7_yh" / "yh_1.png", 768, 512)
    _image(root / "img_badname" / "7_yh" / "yh_0.png")
    _image(root / "img_badname" / "extra" / "yh_1.png")
    _image(root / "img_flat" / "yh_0.png")
    (root / "reg_empty" / "1_man").mkdir(parents=True)
    return root


def _materialise(name: str, root: Path) -> Path:
    text = (FIXTURES / f"{name}.toml").read_text(encoding="utf-8")
    target = root / "configs" / f"{name}.toml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(text.replace("@ROOT@", str(root)), encoding="utf-8")
    return target


EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "adamw8bit": (
        [],
        ["'optimizer_type' = \"AdamW8bit\" needs bitsandbytes, which is NVIDIA-only"],
    ),
    "alpha_above_rank": (
        [],
        [
            "'network_alpha' = 32 is above network_dim = 16: the LoRA's updates are scaled up 2 times"
        ],
    ),
    "bf16": (
        [],
        ["'mixed_precision' = \"bf16\" fails on Apple Silicon (MPS)"],
    ),
    "bucket_steps_not_32": (
        [
            "'bucket_reso_steps' = 48 is not divisible by 32: sdxl_train_network.py stops with an AssertionError"
        ],
        [],
    ),
    "cache_latents_color_aug": (
        [
            "'cache_latents' cannot be combined with color_aug: cached latents are computed once, before any augmentation"
        ],
        [],
    ),
    "cache_latents_random_crop": (
        [
            "'cache_latents' cannot be combined with random_crop: cached latents are computed once, before any augmentation"
        ],
        [],
    ),
    "cache_te_shuffle": (
        [
            "'cache_text_encoder_outputs' cannot be combined with shuffle_caption: cached outputs are computed once, from unshuffled captions (sd-scripts asserts it)"
        ],
        [],
    ),
    "cache_te_text_encoder_lr": (
        [],
        [
            "'text_encoder_lr' = 2.5e-05 is not used: with 'cache_text_encoder_outputs' and network_train_unet_only, the text encoder is not trained"
        ],
    ),
    "cache_te_without_unet_only": (
        [
            "'cache_text_encoder_outputs' requires network_train_unet_only = true (sd-scripts asserts it)"
        ],
        [],
    ),
    "caption_extension_no_dot": (
        [
            "'caption_extension' = \"txt\" matches no caption file, but 3 images have .txt captions: sd-scripts trains without them"
        ],
        [
            "'caption_extension' = \"txt\" has no leading dot: sd-scripts looks for files named like imagetxt"
        ],
    ),
    "choice_mixed_precision": (
        ['\'mixed_precision\' = "fp32" is not one of the choices: "no", "fp16", "bf16"'],
        [],
    ),
    "clip_skip_sdxl": (
        [],
        ["'clip_skip' = 2 does nothing when training SDXL (sd-scripts only logs it)"],
    ),
    "constant_with_warmup": (
        [
            'lr_scheduler = "constant" with lr_warmup_steps = 0.05 makes sd-scripts stop with a ValueError'
        ],
        [],
    ),
    "datasets_array": (
        [
            "unknown key 'datasets': [[datasets]] tables belong in a dataset config, not in the training TOML; sd-scripts ignores them here"
        ],
        [],
    ),
    "duplicate_key": (
        [],
        [
            "'learning_rate' is set 2 times ([network], [training]): sd-scripts uses the last one, 2.5e-05"
        ],
    ),
    "empty_reg_folder": (
        [],
        ["'reg_data_dir' = \"@ROOT@/reg_empty\" holds no regularisation images"],
    ),
    "float_batch_size": (
        ["'train_batch_size' must be an integer, not a float (4.0)"],
        [],
    ),
    "folder_without_repeats": (
        [],
        ["'train_data_dir' folder \"extra\" has no leading <repeats>_: sd-scripts skips it"],
    ),
    "fp8_base": (
        [],
        ["'fp8_base' = true fails on Apple Silicon (MPS)"],
    ),
    "full_fp16": (
        [],
        ["'full_fp16' = true fails on Apple Silicon (MPS)"],
    ),
    "gui_epoch": (
        ["'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"],
        ["neither 'max_train_epochs' nor 'max_train_steps' is set: sd-scripts trains 1600 steps"],
    ),
    "gui_epochs": (
        ["'epochs' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"],
        ["neither 'max_train_epochs' nor 'max_train_steps' is set: sd-scripts trains 1600 steps"],
    ),
    "gui_dynamo_with_compile": (
        [
            '\'dynamo_backend\' = "no" is not one of the choices: "eager", "aot_eager", '
            '"inductor", "aot_ts_nvfuser", "nvprims_nvfuser", "cudagraphs", "ofi", '
            '"fx2trt", "onnxrt", "tensort", "ipex", "tvm"'
        ],
        [],
    ),
    # What the kohya_ss GUI saves and sd-scripts runs with: warnings, no errors.
    "gui_saved_values": ([], []),
    "gui_lora_type": ([], []),
    "gui_lr_restart_cycles": ([], []),
    "gui_lr_warmup": (
        ["'lr_warmup' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"],
        [],
    ),
    "gui_max_resolution": (
        [
            "'max_resolution' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it",
            "'resolution' is not set: sd-scripts needs the training resolution",
        ],
        [],
    ),
    "gui_optimizer": (
        ["'optimizer' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"],
        [],
    ),
    "gui_xformers_string": (
        ["'xformers' is a switch: it must be true or false, not a string (\"sdpa\")"],
        [],
    ),
    "images_not_in_subfolder": (
        [
            "'train_data_dir' = \"@ROOT@/img_flat\" has no <repeats>_<name> folder with images: sd-scripts finds nothing to train on"
        ],
        [],
    ),
    "int_resolution": (
        [
            "'resolution' must be a string like \"512,512\", not an integer (512): sd-scripts crashes on a number"
        ],
        [],
    ),
    "max_bucket_below_resolution": (
        [
            "'max_bucket_reso' = 768 is smaller than the resolution 1024x1024: sd-scripts stops with an AssertionError"
        ],
        [],
    ),
    "max_steps_without_epochs": (
        [],
        [
            "'max_train_steps' = 2000 without max_train_epochs: the run length ignores the dataset size and the saved files are numbered by epoch"
        ],
    ),
    "missing_caption_extension": (
        [
            "'caption_extension' is not set: sd-scripts reads .caption files and ignores the 3 .txt captions in train_data_dir"
        ],
        [],
    ),
    "missing_model": (
        ["'pretrained_model_name_or_path' = \"@ROOT@/missing.safetensors\" does not exist"],
        [],
    ),
    "missing_network_module": (
        ["'network_module' is not set: sd-scripts cannot build the LoRA network without it"],
        [],
    ),
    "sampling_without_prompts": (
        [
            "'sample_every_n_epochs' is set but sample_prompts is not: sd-scripts crashes with a TypeError the first time it samples"
        ],
        [],
    ),
    "missing_output_name": (
        [],
        ["'output_name' is not set: the LoRA files are named epoch-000001 ... and last"],
    ),
    "missing_output_dir": (
        ["'output_dir' is not set: sd-scripts needs a folder to save the LoRA files in"],
        [],
    ),
    "nested_table": (
        [
            "table [training.schedule] is nested two levels deep: sd-scripts flattens only one level, so its keys (lr_scheduler_num_cycles) are never read"
        ],
        [],
    ),
    "no_buckets_mixed_sizes": (
        [
            "buckets are off and 1 of 2 images are not 512x512 (first: yh_1.png, 768x512): sd-scripts fails after loading the model"
        ],
        [],
    ),
    "ok_sdxl": (
        [],
        [],
    ),
    "save_every_above_epochs": (
        [],
        [
            "'save_every_n_epochs' = 20 is more than max_train_epochs = 15: only the final LoRA is saved"
        ],
    ),
    "scalar_network_args": (
        ["'network_args' must be a list (TOML array) of strings, not a string (\"conv_dim=4\")"],
        [],
    ),
    "string_learning_rate": (
        ["'learning_rate' must be a number, not a string (\"2.5e-5\")"],
        [],
    ),
    "string_true_flag": (
        ["'shuffle_caption' is a switch: it must be true or false, not the string \"true\""],
        [],
    ),
    "toml_syntax_error": (
        [
            "@ROOT@/configs/toml_syntax_error.toml is not valid TOML for sd-scripts' parser (line 18, column 1): invalid literal for int() with base 0: 'yh'"
        ],
        [],
    ),
    "typo_key": (
        ["unknown key 'learning_rat': sd-scripts ignores it silently"],
        [],
    ),
    "unknown_optimizer": (
        [
            "'optimizer_type' = \"AdamWW\" is not an optimizer sd-scripts knows: it stops with an AttributeError after loading the model"
        ],
        [],
    ),
    "unknown_scheduler": (
        [
            "'lr_scheduler' = \"cosine_with_warmup\" is not a scheduler sd-scripts knows: it stops with a ValueError after loading the model"
        ],
        [],
    ),
    "validation_split": (
        [],
        [
            "'validation_split' = 0.1 crashes on Apple Silicon: sd-scripts calls a CUDA-only random function there"
        ],
    ),
    "warmup_ratio_ge_1": (
        [
            "'lr_warmup_steps' = 1.5 is a float, read as a ratio of the total steps, and is 1 or more: the learning rate would never finish warming up"
        ],
        [],
    ),
    "xformers": (
        [],
        [
            "'xformers' = true needs the xformers package, which is NVIDIA-only (ImportError on a Mac)"
        ],
    ),
}
# The notes (sd-scripts ignores the key, and its value changes nothing).
NOTES: dict[str, list[str]] = {
    "gui_saved_values": [
        "'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it",
        "'gradient_checkpointing' is a switch: write true or false, not an integer (1); "
        "sd-scripts reads it as true",
        "'full_bf16' is a switch: write true or false, not an integer (0); "
        "sd-scripts reads it as false",
    ],
    "gui_lora_type": [
        "'LoRA_type' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"
    ],
    "gui_lr_restart_cycles": [
        "'lr_restart_cycles' is lora-scripts' old name, not an sd-scripts option: sd-scripts ignores it; 1 is lr_scheduler_num_cycles's default, so nothing changes"
    ],
}


def test_corpus_is_complete() -> None:
    names = {p.stem for p in FIXTURES.glob("*.toml")}
    assert names == set(EXPECTED)
    broken = [n for n in names if n != "ok_sdxl"]
    assert len(broken) >= 25
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"`{name}.toml`" in readme


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_config_gives_exact_messages(name: str, project: Path) -> None:
    report = lint_file(_materialise(name, project))
    root = str(project)
    errors = [p.message.replace(root, "@ROOT@") for p in report.errors]
    warnings = [p.message.replace(root, "@ROOT@") for p in report.warnings]
    assert (errors, warnings) == EXPECTED[name]
    assert [p.message for p in report.notes] == NOTES.get(name, [])
    assert report.ok == (not EXPECTED[name][0])
    for problem in report.errors + report.warnings:
        assert problem.hint, problem


def test_hints_name_the_fix(project: Path) -> None:
    hints = {
        "gui_epoch": "use max_train_epochs = 15",
        "gui_optimizer": 'use optimizer_type = "AdamW"',
        "gui_max_resolution": 'use resolution = "512,512"',
        "typo_key": "did you mean 'learning_rate'?",
        "string_learning_rate": "write learning_rate = 2.5e-05 without quotes",
        "int_resolution": 'write resolution = "512,512"',
        "scalar_network_args": 'write network_args = ["conv_dim=4"]',
        "string_true_flag": "write shuffle_caption = true without quotes",
        "float_batch_size": "write train_batch_size = 4",
        "constant_with_warmup": 'use lr_scheduler = "constant_with_warmup", or lr_warmup_steps = 0',
        "missing_caption_extension": 'add caption_extension = ".txt"',
        "unknown_optimizer": 'did you mean "AdamW"?',
        "folder_without_repeats": "rename it to 7_extra (7 repeats)",
    }
    for name, hint in hints.items():
        report = lint_file(_materialise(name, project))
        assert report.errors + report.warnings
        assert (report.errors + report.warnings)[0].hint == hint, name


def test_gui_lr_warmup_percentage_becomes_a_ratio(project: Path) -> None:
    report = lint_file(_materialise("gui_lr_warmup", project))
    assert report.errors[0].hint == (
        "use lr_warmup_steps = 0.05 (a ratio of the steps; the GUI's lr_warmup is a percentage)"
    )


def test_syntax_error_reports_both_parsers_positions(project: Path) -> None:
    report = lint_file(_materialise("toml_syntax_error", project))
    assert report.errors[0].hint.startswith("tomllib says: Invalid value (at line 18, column 15)")


@pytest.mark.parametrize(
    ("name", "profile", "errors", "warnings"),
    [
        ("xformers", "apple-silicon", 1, 0),
        ("xformers", "cpu", 1, 0),
        ("xformers", "cuda", 0, 0),
        ("bf16", "apple-silicon", 1, 0),
        ("bf16", "cpu", 0, 0),
        ("adamw8bit", "apple-silicon", 1, 0),
        ("adamw8bit", "cuda", 0, 0),
        ("validation_split", "apple-silicon", 1, 0),
        ("validation_split", "cpu", 0, 0),
        ("full_fp16", "cpu", 1, 0),
        ("fp8_base", "apple-silicon", 1, 0),
    ],
)
def test_profile_turns_mac_problems_into_errors(
    name: str, profile: str, errors: int, warnings: int, project: Path
) -> None:
    report = lint_file(_materialise(name, project), profile=profile)
    assert (len(report.errors), len(report.warnings)) == (errors, warnings)
    if errors:
        assert report.errors[0].hint.endswith(f"(profile {profile})")


def test_kohya_ss_gui_style_config_is_caught(tmp_path: Path) -> None:
    # The shape of a config saved by the kohya_ss GUI: its own names next to sd-scripts' ones.
    path = tmp_path / "gui.toml"
    path.write_text(
        'LoRA_type = "Standard"\nepoch = 15\noptimizer = "AdamW"\n'
        'max_resolution = "512,512"\nlr_warmup = 5\nlr_restart_cycles = 3\n'
        "learning_rate = 2.5e-05\ntrain_batch_size = 4\nsdxl = true\n"
        'xformers = "sdpa"\noptimizer_args = "lr=1"\n',
        encoding="utf-8",
    )
    report = lint_file(path)
    keys = [p.key for p in report.errors]
    for key in (
        "LoRA_type",
        "epoch",
        "optimizer",
        "max_resolution",
        "lr_warmup",
        "lr_restart_cycles",
        "sdxl",
        "xformers",
        "optimizer_args",
    ):
        assert key in keys, key
    assert (
        "'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"
        in report.messages()
    )


def test_types_against_the_facts() -> None:
    doc = {
        "a": {
            "learning_rate": 1,  # an int is a fine float
            "network_alpha": 8,
            "max_train_epochs": True,  # a boolean is not an integer
            "text_encoder_lr": 2.5e-5,  # main still takes one number here
            "optimizer_args": ["weight_decay=0.01", 3],
            "lr_warmup_steps": "5%",
            "base_weights_multiplier": [1, 0.5],
        }
    }
    report = lint(doc, script="sdxl_train_network.py", check_files=False)
    errors = [p.message for p in report.errors if p.key in doc["a"]]
    assert errors == [
        "'max_train_epochs' must be an integer, not a boolean (true)",
        "'optimizer_args' must be a list of strings, but item 2 is an integer (3)",
        "'lr_warmup_steps' must be a number, not a string (\"5%\")",
    ]


def test_v091_text_encoder_lr_is_a_scalar() -> None:
    old = load_contract("sdxl_train_network.py", commit="v0.9.1")
    report = lint({"text_encoder_lr": [1e-5]}, contract=old, check_files=False)
    assert "'text_encoder_lr' must be a number, not a list ([1e-05])" in report.messages()


def test_train_network_has_no_text_encoder_cache_option() -> None:
    report = lint(
        {"cache_text_encoder_outputs": True}, script="train_network.py", check_files=False
    )
    assert [p.message for p in report.warnings if p.key == "cache_text_encoder_outputs"] == [
        "'cache_text_encoder_outputs' is an option of sdxl_train_network.py and "
        "sd3_train_network.py and flux_train_network.py, not of train_network.py: sd-scripts "
        "ignores it here"
    ]


def test_clip_skip_is_fine_for_sd1() -> None:
    report = lint({"clip_skip": 2}, script="train_network.py", check_files=False)
    assert not [p for p in report.warnings if p.key == "clip_skip"]


def test_sd1_bucket_steps_must_divide_by_64() -> None:
    report = lint({"bucket_reso_steps": 32}, script="train_network.py", check_files=False)
    assert [p.message for p in report.errors if p.key == "bucket_reso_steps"] == [
        "'bucket_reso_steps' = 32 is not divisible by 64: train_network.py stops with an "
        "AssertionError"
    ]


def _bucket_errors(**values: object) -> list[str]:
    doc = {"enable_bucket": True, "resolution": "1024,512", **values}
    report = lint(doc, script="sdxl_train_network.py", check_files=False)
    return [p.message for p in report.errors if p.key.endswith("bucket_reso")]


def test_bucket_range_is_checked_like_sd_scripts() -> None:
    # sd-scripts asserts min(resolution) >= min_bucket_reso and max(resolution) <= max_bucket_reso
    # whenever buckets are on, bucket_no_upscale or not, after rounding min down and max up to
    # bucket_reso_steps (train_util.adjust_min_max_bucket_reso_by_steps).
    assert _bucket_errors(min_bucket_reso=576, max_bucket_reso=2048) == [
        "'min_bucket_reso' = 576 is larger than the shorter side of the resolution 1024x512: "
        "sd-scripts stops with an AssertionError"
    ]
    assert _bucket_errors(min_bucket_reso=256, max_bucket_reso=768, bucket_no_upscale=True) == [
        "'max_bucket_reso' = 768 is smaller than the resolution 1024x512: "
        "sd-scripts stops with an AssertionError"
    ]
    # 1000 rounds up to 1024 and 540 down to 512: sd-scripts accepts both.
    assert _bucket_errors(min_bucket_reso=540, max_bucket_reso=1000) == []
    assert _bucket_errors(min_bucket_reso=576, enable_bucket=False) == []


def test_persistent_workers_need_workers() -> None:
    doc = {"persistent_data_loader_workers": True, "max_data_loader_n_workers": 0}
    for profile in ("cuda", None):
        report = lint(doc, check_files=False, profile=profile)
        assert [
            (p.message, p.hint) for p in report.errors if p.key == "persistent_data_loader_workers"
        ] == [
            (
                "'persistent_data_loader_workers' = true with max_data_loader_n_workers = 0: "
                "torch's DataLoader stops with a ValueError (persistent workers need workers)",
                "set persistent_data_loader_workers = false, or max_data_loader_n_workers = 2",
            )
        ]
    report = lint({**doc, "max_data_loader_n_workers": 2}, check_files=False)
    assert not [p for p in report.errors if p.key == "persistent_data_loader_workers"]


def test_gui_names_beside_their_target_warn_only_when_they_mean_the_same(project: Path) -> None:
    report = lint_file(_materialise("gui_saved_values", project))
    assert report.notes[0].hint == "remove it: max_train_epochs = 15 is set"
    doc = {"LoRA_type": "LyCORIS/LoCon", "network_module": "networks.lora"}
    report = lint(doc, check_files=False)
    assert [p.message for p in report.errors if p.key == "LoRA_type"] == [
        "'LoRA_type' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it"
    ]
    report = lint({"epoch": 3, "max_train_epochs": 15}, check_files=False)
    assert [p.hint for p in report.errors if p.key == "epoch"] == ["use max_train_epochs = 3"]
    report = lint({"conv_dim": 4, "network_args": ["conv_alpha=1"]}, check_files=False)
    assert "conv_dim" in [p.key for p in report.errors]
    report = lint({"conv_dim": 4, "network_args": ["conv_dim=4"]}, check_files=False)
    assert [p.key for p in report.notes if p.key == "conv_dim"] == ["conv_dim"]
    assert "conv_dim" not in [p.key for p in report.errors]


def test_relative_paths_resolve_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = lint({"train_data_dir": "img"}, check_files=True)
    assert report.warnings[-1].message == (
        f"'train_data_dir' = \"img\" is a relative path and does not exist from here "
        f"({tmp_path}): sd-scripts resolves it from the folder it is started in"
    )
    (tmp_path / "img" / "7_yh").mkdir(parents=True)
    report = lint({"train_data_dir": "img"}, check_files=True)
    assert [p.key for p in report.warnings + report.errors if p.key == "train_data_dir"] == [
        "train_data_dir"
    ]
    assert "has no <repeats>_<name> folder with images" in report.errors[-1].message


def test_hugging_face_model_id_is_not_a_missing_path() -> None:
    report = lint({"pretrained_model_name_or_path": "stabilityai/sdxl-base-1.0"})
    assert not [p for p in report.errors if p.key == "pretrained_model_name_or_path"]


def test_file_only_tomllib_accepts_is_an_error_for_sd_scripts(tmp_path: Path) -> None:
    # toml 0.10.2 (sd-scripts' parser) refuses arrays of mixed types; TOML 1.0 allows them.
    path = tmp_path / "mixed.toml"
    path.write_text("base_weights_multiplier = [1, 0.5]\n", encoding="utf-8")
    report = lint_file(path, check_files=False)
    assert report.messages() == [
        f"{path} is not valid TOML for sd-scripts' parser (line 1, column 1): "
        "Not a homogeneous array"
    ]
    assert report.errors[0].hint.startswith("tomllib reads this file, but sd-scripts' parser")


def test_missing_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    report = lint_file(tmp_path / "nope.toml")
    assert report.messages() == [f"{tmp_path / 'nope.toml'} does not exist"]


def test_cli_exit_codes_and_output(runner: CliRunner, project: Path) -> None:
    ok = runner.invoke(
        cli, ["validate", str(_materialise("ok_sdxl", project))], catch_exceptions=False
    )
    assert ok.exit_code == 0
    assert ok.output.splitlines()[-1] == "ok: no problems found"
    warn_only = runner.invoke(cli, ["validate", str(_materialise("clip_skip_sdxl", project))])
    assert warn_only.exit_code == 0
    assert warn_only.output.splitlines()[-1] == "0 errors, 1 warning"
    bad = runner.invoke(cli, ["validate", str(_materialise("gui_epoch", project))])
    assert bad.exit_code == 1
    assert bad.output.splitlines()[1:] == [
        "script: sdxl_train_network.py (nothing in the file says SD 1.x or SDXL: checked with "
        "sdxl_train_network.py's options (they include train_network.py's), without the rules "
        "in which the two differ; pass --script to choose)",
        "facts: sd-scripts 6721028c (kohya_ss v26 pin): no sd-scripts checkout found, so the "
        "pinned commit's facts",
        "error: 'epoch' is a kohya_ss GUI name, not an sd-scripts option: sd-scripts ignores it",
        "  hint: use max_train_epochs = 15",
        "warning: neither 'max_train_epochs' nor 'max_train_steps' is set: sd-scripts trains "
        "1600 steps",
        "  hint: set max_train_epochs = 15",
        "1 error, 1 warning",
    ]


def test_cli_json(runner: CliRunner, project: Path) -> None:
    path = _materialise("constant_with_warmup", project)
    result = runner.invoke(cli, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert data["file"] == str(path)
    assert data["errors"] == [
        {
            "key": "lr_scheduler",
            "message": 'lr_scheduler = "constant" with lr_warmup_steps = 0.05 makes sd-scripts '
            "stop with a ValueError",
            "hint": 'use lr_scheduler = "constant_with_warmup", or lr_warmup_steps = 0',
        }
    ]
    assert data["warnings"] == []


def test_cli_script_and_profile(runner: CliRunner, project: Path) -> None:
    path = _materialise("xformers", project)
    result = runner.invoke(cli, ["validate", str(path), "--profile", "apple-silicon"])
    assert result.exit_code == 1
    result = runner.invoke(cli, ["validate", str(path), "--script", "train_network.py"])
    assert "train_network.py at sd-scripts 6721028c (kohya_ss v26 pin)" in result.output
    bad = runner.invoke(cli, ["validate", str(path), "--script", "sd_xl_train_network.py"])
    assert bad.exit_code == 2


def test_cli_subprocess_real_entry_point(project: Path) -> None:
    path = _materialise("typo_key", project)
    proc = subprocess.run(
        [sys.executable, "-m", "kohya_orchestrator", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "error: unknown key 'learning_rat': sd-scripts ignores it silently" in proc.stdout


def test_header_names_script_and_profile(tmp_path: Path, runner: CliRunner) -> None:
    # The first lines kohya-orch's templates write; a GUI config has none.
    path = tmp_path / "config.toml"
    path.write_text(
        "# SD 1.x / 2.x LoRA training config for sd-scripts' train_network.py (--config_file).\n"
        '# Base model: "SD 1.x"; profile: "apple-silicon"; LoRA: "yh"\n'
        "\n"
        "clip_skip = 2\nxformers = true\n",
        encoding="utf-8",
    )
    report = lint_file(path, check_files=False)
    assert (report.script, report.profile) == ("train_network.py", "apple-silicon")
    assert [p.key for p in report.errors if p.key in ("clip_skip", "xformers")] == ["xformers"]
    cuda = lint_file(path, profile="cuda", check_files=False)
    assert not [p for p in cuda.errors + cuda.warnings if p.key == "xformers"]
    forced = lint_file(path, "sdxl_train_network.py", check_files=False)
    assert [p.key for p in forced.warnings if p.key == "clip_skip"] == ["clip_skip"]
    # `validate DIR` reads DIR/config.toml
    result = runner.invoke(cli, ["validate", str(tmp_path)])
    assert result.output.splitlines()[0] == (
        f"{path}: checked against train_network.py at sd-scripts 6721028c (kohya_ss v26 pin): "
        "195 options (shipped train_network.6721028c.json), profile apple-silicon"
    )


def test_gui_config_without_header_uses_sdxl_and_no_profile(tmp_path: Path) -> None:
    path = tmp_path / "gui.toml"
    path.write_text("[model]\nxformers = true\n", encoding="utf-8")
    report = lint_file(path, check_files=False)
    assert (report.script, report.profile) == ("sdxl_train_network.py", None)
    assert [p.key for p in report.warnings if p.key == "xformers"] == ["xformers"]


def test_explicit_contract_file(tmp_path: Path, runner: CliRunner) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(
        json.dumps(
            {
                "script": "sdxl_train_network.py",
                "sd_scripts_commit": "feedbeef",
                "options": [
                    {
                        "dest": "brand_new_option",
                        "option_strings": ["--brand_new_option"],
                        "kind": "store_true",
                        "type": None,
                        "default": False,
                        "choices": None,
                        "nargs": 0,
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    path = tmp_path / "c.toml"
    path.write_text("brand_new_option = true\n", encoding="utf-8")
    report = lint_file(path, facts=facts, check_files=False)
    assert not [p for p in report.errors if p.key == "brand_new_option"]
    result = runner.invoke(cli, ["validate", str(path), "--contract", str(facts), "--json"])
    data = json.loads(result.output)
    assert data["contract"] == f"sdxl_train_network.py at sd-scripts feedbeef: 1 options ({facts})"


def test_profiles_are_the_settings_profiles() -> None:
    # One list: a profile added to profiles.py is one a config header may name.
    from kohya_orchestrator.config import profiles
    from kohya_orchestrator.lint import linter as validate

    assert tuple(profiles.PROFILES) == validate.PROFILES
