"""`kohya-orch import` and `prepare --from`: kohya_ss GUI files as settings, field by field.

The presets are our own, written in the field names of the kohya_ss GUI's LoRA tab
(kohya_gui/lora_gui.py save_configuration) and its presets/lora/*.json, values as the GUI
saves them (numbers as text, "" for unset).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from projectfactory import make_images, make_model

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.gui_import import convert_gui
from kohya_orchestrator.project.gui_import import import_file

PRESET: dict[str, Any] = {
    "LoRA_type": "Standard",
    "adaptive_noise_scale": 0,
    "additional_parameters": "",
    "bucket_reso_steps": 64,
    "cache_latents": True,
    "caption_extension": ".txt",
    "clip_skip": "2",
    "conv_dim": 1,
    "enable_bucket": True,
    "epoch": 12,
    "flip_aug": True,
    "gradient_accumulation_steps": "1",
    "keep_tokens": "0",
    "learning_rate": 0.0001,
    "lr_scheduler": "cosine",
    "lr_warmup": 10,
    "max_resolution": "768,768",
    "max_token_length": "75",
    "max_train_epochs": "",
    "max_train_steps": "",
    "min_snr_gamma": 5,
    "mixed_precision": "bf16",
    "network_alpha": 8,
    "network_dim": 16,
    "noise_offset": 0.05,
    "noise_offset_type": "Original",
    "num_cpu_threads_per_process": 2,
    "optimizer": "AdamW8bit",
    "optimizer_args": "weight_decay=0.1 betas=0.9,0.99",
    "output_dir": "/home/someone/lora/model",
    "prior_loss_weight": 1.0,
    "save_every_n_epochs": 2,
    "save_state": False,
    "sdxl": True,
    "sdxl_no_half_vae": True,
    "seed": "",
    "shuffle_caption": True,
    "text_encoder_lr": 0,
    "train_batch_size": 2,
    "unet_lr": 0.0001,
    "wandb_api_key": "",
    "xformers": "xformers",
}


def _lines(doc: dict[str, Any]) -> dict[str, str]:
    return {row.field: row.line() for row in convert_gui(doc).rows}


def test_every_field_of_a_preset(tmp_path: Path) -> None:
    lines = _lines(PRESET)
    assert lines == {
        "LoRA_type": 'LoRA_type = "Standard": dropped, the standard LoRA (networks.lora) is '
        "what kohya-orch trains",
        "adaptive_noise_scale": "adaptive_noise_scale = 0: dropped, empty or off in the preset "
        "(sd-scripts' default)",
        "additional_parameters": 'additional_parameters = "": dropped, empty in the preset',
        "bucket_reso_steps": "bucket_reso_steps = 64 -> bucket_reso_steps = 64",
        "cache_latents": "cache_latents = true -> cache_latents = true",
        "caption_extension": 'caption_extension = ".txt" -> caption_extension = ".txt"',
        "clip_skip": 'clip_skip = "2" -> clip_skip = 2',
        "conv_dim": "conv_dim = 1: dropped, a GUI-only field with no sd-scripts option of this "
        "name (the GUI passes some to LyCORIS networks in network_args)",
        "enable_bucket": "enable_bucket = true -> enable_bucket = true",
        "epoch": "epoch = 12 -> epochs = 12",
        "flip_aug": "flip_aug = true -> flip_aug = true",
        "gradient_accumulation_steps": 'gradient_accumulation_steps = "1" -> '
        "gradient_accumulation_steps = 1",
        "keep_tokens": 'keep_tokens = "0": dropped, 0 (the GUI\'s default): kohya-orch keeps the '
        "trigger's tokens first; set keep_tokens = 0 to keep none",
        "learning_rate": "learning_rate = 0.0001 -> learning_rate = 0.0001",
        "lr_scheduler": 'lr_scheduler = "cosine" -> lr_scheduler = "cosine"',
        "lr_warmup": "lr_warmup = 10 -> warmup_ratio = 0.1 (10 % of the steps -> a ratio)",
        "max_resolution": 'max_resolution = "768,768" -> resolution = "768,768"',
        "max_token_length": 'max_token_length = "75": dropped, 75 tokens is sd-scripts\' own '
        "default",
        "max_train_epochs": 'max_train_epochs = "": dropped, 0: the GUI\'s epoch decides',
        "max_train_steps": 'max_train_steps = "": dropped, empty in the preset',
        "min_snr_gamma": "min_snr_gamma = 5 -> sd_scripts.min_snr_gamma = 5.0 (a raw sd-scripts "
        "key)",
        "mixed_precision": 'mixed_precision = "bf16" -> mixed_precision = "bf16"',
        "network_alpha": "network_alpha = 8 -> network_alpha = 8.0",
        "network_dim": "network_dim = 16 -> network_dim = 16",
        "noise_offset": "noise_offset = 0.05 -> sd_scripts.noise_offset = 0.05 (a raw sd-scripts "
        "key)",
        "noise_offset_type": 'noise_offset_type = "Original": dropped, picks noise_offset or '
        "multires_noise_*",
        "num_cpu_threads_per_process": "num_cpu_threads_per_process = 2: dropped, accelerate's "
        "settings: kohya-orch passes them (train --gpus, --gpu-ids)",
        "optimizer": 'optimizer = "AdamW8bit" -> optimizer = "AdamW8bit"',
        "optimizer_args": 'optimizer_args = "weight_decay=0.1 betas=0.9,0.99" -> '
        'sd_scripts.optimizer_args = ["weight_decay=0.1", "betas=0.9,0.99"] (split as the GUI '
        "does)",
        "output_dir": 'output_dir = "/home/someone/lora/model": dropped, kohya-orch\'s folders: '
        "DEST/model and DEST/log",
        "prior_loss_weight": "prior_loss_weight = 1.0: dropped, the same as sd-scripts' default",
        "save_every_n_epochs": "save_every_n_epochs = 2 -> save_every_n_epochs = 2",
        "save_state": "save_state = false: dropped, off in the preset: kohya-orch keeps resumable "
        "state for the last epoch (set save_state = false to turn it off)",
        "sdxl": "sdxl = true: dropped, the checkpoint's own keys say SDXL or SD 1.x/2.x; "
        "kohya-orch reads them",
        "sdxl_no_half_vae": "sdxl_no_half_vae = true -> sd_scripts.no_half_vae = true (no half "
        "VAE: the raw sd-scripts key no_half_vae)",
        "seed": 'seed = "": dropped, no seed in the preset: kohya-orch\'s fixed seed keeps runs '
        "repeatable",
        "shuffle_caption": "shuffle_caption = true -> shuffle_caption = true",
        "text_encoder_lr": "text_encoder_lr = 0 -> sd_scripts.network_train_unet_only = true (0 "
        "with a U-Net LR: the GUI trains the U-Net only)",
        "train_batch_size": "train_batch_size = 2 -> batch_size = 2",
        "unet_lr": "unet_lr = 0.0001 -> unet_lr = 0.0001",
        "wandb_api_key": 'wandb_api_key = "": dropped, a secret: never copied into a settings file',
        "xformers": 'xformers = "xformers" -> attention = "xformers" (CrossAttention xformers)',
    }


def test_conversions_that_read_two_fields() -> None:
    assert _lines({"epoch": 12, "max_train_epochs": "20"}) == {
        "epoch": "epoch = 12: dropped, max_train_epochs is set, and wins over epoch in the GUI",
        "max_train_epochs": 'max_train_epochs = "20" -> epochs = 20 (wins over epoch, as in the '
        "GUI)",
    }
    steps = _lines({"lr_warmup": 5, "lr_warmup_steps": 40, "max_train_steps": "400"})
    assert steps["lr_warmup"] == (
        "lr_warmup = 5: dropped, lr_warmup_steps is set, and the GUI uses it instead of the "
        "percentage"
    )
    assert steps["lr_warmup_steps"] == (
        "lr_warmup_steps = 40 -> warmup_ratio = 0.1 (40 of max_train_steps 400)"
    )
    rates = _lines({"learning_rate": 0.0002, "unet_lr": 0, "text_encoder_lr": 0})
    assert rates["unet_lr"] == "unet_lr = 0 -> unet_lr = 0.0002 (0: the GUI uses the learning rate)"
    assert rates["text_encoder_lr"] == (
        "text_encoder_lr = 0 -> text_encoder_lr = 0.0002 (0: the GUI uses the learning rate)"
    )
    assert _lines({"xformers": "sdpa"})["xformers"] == (
        'xformers = "sdpa" -> attention = "sdpa" (CrossAttention sdpa)'
    )
    assert _lines({"xformers": "none"})["xformers"] == (
        'xformers = "none": dropped, no CrossAttention in the preset: the profile\'s (sdpa) is used'
    )


def test_a_gui_generated_toml(tmp_path: Path) -> None:
    path = tmp_path / "config_lora-20260101.toml"
    path.write_text(
        "max_train_epochs = 8\nlr_warmup_steps = 0.05\nsdpa = true\ntext_encoder_lr = [5e-5]\n"
        'train_batch_size = 4\nnetwork_module = "networks.lora"\nepoch = 8\n'
        'output_name = "hakone"\npersistent_data_loader_workers = 0\n'
    )
    result = import_file(path, profile="cuda")
    assert result.kind == "gui"
    assert result.document == {
        "epochs": 8,
        "warmup_ratio": 0.05,
        "attention": "sdpa",
        "text_encoder_lr": 5e-5,
        "batch_size": 4,
        "name": "hakone",
        "persistent_data_loader_workers": False,
        "profile": "cuda",
    }
    assert [r.line() for r in result.rows if r.field == "epoch"] == [
        "epoch = 8: dropped, max_train_epochs is set, and wins over epoch in the GUI"
    ]
    assert result.missing == ["trigger", "images", "model"]


def test_the_lint_drops_what_the_profile_refuses_and_paths_from_elsewhere(tmp_path: Path) -> None:
    preset = {
        **PRESET,
        "train_data_dir": "/home/someone/datasets/hakone",
        "pretrained_model_name_or_path": "/home/someone/models/pony.safetensors",
    }
    path = tmp_path / "preset.json"
    path.write_text(json.dumps(preset))
    result = import_file(path)
    looks = [r.line() for r in result.rows if r.warn]
    assert looks == [
        'mixed_precision = "bf16": dropped, \'mixed_precision\' = "bf16" fails on Apple Silicon '
        "(MPS); the profile's value is used",
        'optimizer = "AdamW8bit": dropped, \'optimizer_type\' = "AdamW8bit" needs bitsandbytes, '
        "which is NVIDIA-only; the profile's value is used",
        "text_encoder_lr = 0 -> sd_scripts.network_train_unet_only = true (0 with a U-Net LR: the "
        "GUI trains the U-Net only)",
        "xformers = \"xformers\": dropped, 'xformers' = true needs the xformers package, which is "
        "NVIDIA-only (ImportError on a Mac); the profile's value is used",
        'train_data_dir = "/home/someone/datasets/hakone": dropped, /home/someone/datasets/hakone '
        "is not on this machine: give --images DIR[:REPEATS]",
        'pretrained_model_name_or_path = "/home/someone/models/pony.safetensors": dropped, '
        "/home/someone/models/pony.safetensors is not on this machine: give --model "
        "FILE.safetensors",
    ]
    assert result.errors == []
    for key in ("mixed_precision", "optimizer", "attention", "images", "model"):
        assert key not in result.document
    # Under the cuda profile the same values are fine.
    assert import_file(path, profile="cuda").document["attention"] == "xformers"


def test_concept_folders_of_train_data_dir_become_concepts(tmp_path: Path) -> None:
    parent = tmp_path / "img"
    make_images(parent / "7_hakone", "a", 2)
    make_images(parent / "3_hakone casual", "b", 1)  # fewer images: not the main concept
    convert = convert_gui({"train_data_dir": str(parent)})
    [row] = convert.rows
    assert row.line() == (
        f'train_data_dir = "{parent}" -> images = "{parent / "7_hakone"}", repeats = 7, concepts '
        f'= [{{ images = "{parent / "3_hakone casual"}", repeats = 3, class_tokens = '
        '"hakone casual" }] (its 2 concept folder(s))'
    )


def test_cli_import_writes_once_and_prepare_uses_it(runner: CliRunner, tmp_path: Path) -> None:
    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps(PRESET))
    out = tmp_path / "hakone.toml"
    result = runner.invoke(cli, ["import", str(preset), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"{preset} (kohya_ss GUI file; profile apple-silicon):"
    assert result.output.endswith(
        "Not in the file, give them to prepare: name (NAME), trigger (--trigger), images "
        f"(--images), model (--model)\nWrote {out}.\nNext: kohya-orch prepare NAME --images DIR "
        f"--dest DEST --model FILE --from {out}\n"
    )
    text = out.read_text()
    doc = tomllib.loads(text)
    assert (doc["epochs"], doc["warmup_ratio"], doc["resolution"]) == (12, 0.1, "768,768")
    assert doc["sd_scripts"]["optimizer_args"] == ["weight_decay=0.1", "betas=0.9,0.99"]
    assert '# trigger = "..."  # required:' in text
    again = runner.invoke(cli, ["import", str(preset), "-o", str(out)])
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: {out} exists; nothing was written.\n"
        "  hint: Use --force to replace it, or give another -o file.\n"
    )
    assert out.read_text() == text

    images = make_images(tmp_path / "hakone", "hakone", 2, "hakone")
    model = make_model(tmp_path / "base.safetensors")
    dest = tmp_path / "train"
    result = runner.invoke(
        cli,
        [
            "prepare",
            "hakone",
            "--images",
            str(images),
            "--dest",
            str(dest),
            "--model",
            str(model),
            "--from",
            str(out),
            "--set",
            "epochs=9",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    settings = tomllib.loads((dest / "kohya-orch.toml").read_text())
    assert (settings["epochs"], settings["warmup_ratio"], settings["network_dim"]) == (9, 0.1, 16)
    assert settings["lr_scheduler"] == "cosine"
    assert settings["sd_scripts"]["min_snr_gamma"] == 5.0
    assert "profile" in settings and "mixed_precision" not in settings


def test_prepare_from_a_gui_preset_directly(runner: CliRunner, tmp_path: Path) -> None:
    parent = tmp_path / "gui_img"
    make_images(parent / "5_hakone", "hakone", 2, "hakone")
    make_images(parent / "2_hakone_casual", "casual", 1, "hakone")
    model = make_model(tmp_path / "base.safetensors")
    preset = tmp_path / "preset.json"
    preset.write_text(
        json.dumps(
            {"train_data_dir": str(parent), "pretrained_model_name_or_path": str(model), "epoch": 4}
        )
    )
    dest = tmp_path / "train"
    result = runner.invoke(
        cli,
        ["prepare", "hakone", "--dest", str(dest), "--from", str(preset)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (
        f"Prepared {dest}: img/5_hakone/ (2 images), img/2_hakone_casual/ (1 images), model/, log/"
    ) in result.output
    settings = tomllib.loads((dest / "kohya-orch.toml").read_text())
    assert (settings["repeats"], settings["epochs"]) == (5, 4)
    assert settings["concepts"] == [
        {"images": str(parent / "2_hakone_casual"), "repeats": 2, "class_tokens": "hakone_casual"}
    ]


def test_the_mapping_table_has_one_row_per_gui_field() -> None:
    from kohya_orchestrator.config.gui_import import import_table

    rows = {gui: (ours, how) for gui, ours, how in import_table()}
    assert len(rows) == len(import_table())
    assert rows["max_resolution"] == ("resolution", "by kind (resolution)")
    assert rows["instance_prompt"] == ("trigger", "by kind (str)")
    assert rows["lr_warmup"] == ("", "% -> warmup_ratio")
    assert rows["xformers"] == ("", "CrossAttention -> attention")
    assert rows["train_data_dir"] == ("images, repeats, concepts", "its <repeats>_<name> folders")
