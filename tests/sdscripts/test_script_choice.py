"""Tests for script_choice: which training script a config is judged as, and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only
from kohya_orchestrator.sdscripts.script_choice import choose_script, model_family_of

UNDETERMINED = (
    "nothing in the file says SD 1.x or SDXL: checked with sdxl_train_network.py's options "
    "(they include train_network.py's), without the rules in which the two differ; pass "
    "--script to choose"
)


@pytest.mark.parametrize(
    ("flat", "script", "reason"),
    [
        (
            {"network_module": "networks.lora_flux"},
            "flux_train_network.py",
            'network_module = "networks.lora_flux"',
        ),
        (
            {"network_module": "networks.lora_sd3"},
            "sd3_train_network.py",
            'network_module = "networks.lora_sd3"',
        ),
        (
            {"model_train_type": "sdxl-lora"},
            "sdxl_train_network.py",
            'model_train_type = "sdxl-lora" (lora-scripts)',
        ),
        ({"sdxl": False}, "train_network.py", "sdxl = false (the kohya_ss GUI)"),
        ({"v2": True}, "train_network.py", "v2 = true (SD 2.x)"),
        ({"ae": "/m/ae.safetensors"}, "flux_train_network.py", "'ae' is a Flux key"),
        (
            {"clip_g": "/m/g.safetensors", "t5xxl": "/m/t5.safetensors"},
            "sd3_train_network.py",
            "'clip_g' is a SD3 key",
        ),
        (
            {"t5xxl": "/m/t5.safetensors"},
            "flux_train_network.py",
            "'t5xxl' is a Flux (or SD3) key, and no SD3 key",
        ),
        (
            {"cache_text_encoder_outputs": True},
            "sdxl_train_network.py",
            "'cache_text_encoder_outputs' = true is SDXL-only",
        ),
        ({"cache_text_encoder_outputs": False}, "sdxl_train_network.py", UNDETERMINED),
        (
            {"pretrained_model_name_or_path": "C:/m/ponyDiffusionV6XL.safetensors"},
            "sdxl_train_network.py",
            "the model's name (ponyDiffusionV6XL.safetensors) says SDXL",
        ),
        (
            {"pretrained_model_name_or_path": "runwayml/stable-diffusion-v1-5"},
            "train_network.py",
            "the model's name (stable-diffusion-v1-5) says SD 1.x",
        ),
        (
            {"pretrained_model_name_or_path": "/m/MyAnimeModel.ckpt"},
            "sdxl_train_network.py",
            UNDETERMINED,
        ),
    ],
)
def test_the_script_comes_from_the_config(flat: dict, script: str, reason: str) -> None:  # type: ignore[type-arg]
    choice = choose_script(flat)
    assert (choice.script, choice.reason) == (script, reason)
    assert choice.known == (reason != UNDETERMINED)


def test_the_header_wins_then_the_model_header(tmp_path: Path) -> None:
    assert choose_script({"ae": "x"}, header_script="train_network.py").reason == (
        "named in the file's header"
    )
    model = tmp_path / "anything.safetensors"
    keys = ["conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight"]
    write_header_only(model, {k: {"dtype": "F16", "shape": [4, 4]} for k in keys}, {})
    flat = {"pretrained_model_name_or_path": str(model)}
    assert model_family_of(flat) == "sdxl"
    choice = choose_script(flat, model_family="sdxl")
    assert (choice.script, choice.reason) == (
        "sdxl_train_network.py",
        "the model file's tensors are SDXL's",
    )


def test_validate_says_which_script_and_why(tmp_path: Path) -> None:
    path = tmp_path / "flux.toml"
    path.write_text('network_module = "networks.lora_flux"\nclip_skip = 2\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    lines = result.output.splitlines()
    assert lines[1] == 'script: flux_train_network.py (network_module = "networks.lora_flux")'
    assert (
        "note: Flux: keys, types and choices are checked against flux_train_network.py's facts, "
        "with the rules every script shares; the SD 1.x/SDXL-only rules (clip_skip, bucket "
        "steps of 64) do not apply"
    ) in lines
    assert not [line for line in lines if "clip_skip" in line and line.startswith("warning")]
