"""Base model family from a checkpoint's tensor names (header only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from kohya_orchestrator.errors import ModelError
from kohya_orchestrator.sdscripts.checkpoint import (
    detect_family,
    family_from_keys,
    require_trainable,
    training_script,
)
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only

# Key names as sd-scripts' loaders expect them (library/sdxl_model_util.py, model_util.py,
# sd3_utils.py, flux_utils.py, networks/lora.py), a few per family.
FAMILY_KEYS: dict[str, list[str]] = {
    "sdxl": [
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
        "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
        "model.diffusion_model.label_emb.0.0.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
        "first_stage_model.encoder.conv_in.weight",
    ],
    "sd1": [
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
        "first_stage_model.encoder.conv_in.weight",
    ],
    "sd2": [
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
        "cond_stage_model.model.token_embedding.weight",
        "model.diffusion_model.input_blocks.0.0.weight",
    ],
    "sd3": [
        "model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight",
        "model.diffusion_model.x_embedder.proj.weight",
    ],
    "flux": [
        "double_blocks.0.img_attn.proj.bias",
        "single_blocks.0.modulation.lin.bias",
        "img_in.weight",
    ],
    "lora": [
        "lora_unet_input_blocks_4_1_proj_in.lora_down.weight",
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha",
    ],
    "unknown": [
        "encoder.conv_in.weight",
        "decoder.conv_out.weight",
    ],
}


def make_checkpoint(path: Path, family: str) -> Path:
    """A real safetensors file with the family's key names and tiny tensors."""
    tensors = {k: np.zeros((2, 2), dtype=np.float16) for k in FAMILY_KEYS[family]}
    save_file(tensors, str(path), metadata={"made_by": "test"})
    return path


@pytest.mark.parametrize("family", list(FAMILY_KEYS))
def test_detect_family_from_real_files(tmp_path: Path, family: str) -> None:
    info = detect_family(make_checkpoint(tmp_path / f"{family}.safetensors", family))
    assert info.family == family
    assert info.tensor_count == len(FAMILY_KEYS[family])


def test_labels_and_scripts(tmp_path: Path) -> None:
    info = detect_family(make_checkpoint(tmp_path / "m.safetensors", "sdxl"))
    assert (info.label, info.script, info.trainable) == ("SDXL", "sdxl_train_network.py", True)
    assert training_script("sdxl") == "sdxl_train_network.py"
    assert training_script("sd1") == "train_network.py"
    assert training_script("sd2") == "train_network.py"


def test_flux_with_diffusion_model_prefix() -> None:
    keys = ["model.diffusion_model.double_blocks.0.img_attn.proj.bias"]
    assert family_from_keys(keys) == "flux"


def test_reads_only_the_header(tmp_path: Path) -> None:
    # A header describing 6.9 GB of SDXL weights, with no data at all behind it.
    path = tmp_path / "pony.safetensors"
    shape = {"dtype": "F16", "shape": [60000, 60000]}
    write_header_only(path, {k: shape for k in FAMILY_KEYS["sdxl"]}, {})
    assert path.stat().st_size < 4096
    assert require_trainable(path).family == "sdxl"


@pytest.mark.parametrize("family", ["sdxl", "sd1", "sd2"])
def test_require_trainable_accepts(tmp_path: Path, family: str) -> None:
    path = make_checkpoint(tmp_path / "m.safetensors", family)
    assert require_trainable(path).family == family


def test_training_script_refuses_other_families() -> None:
    with pytest.raises(ModelError) as err:
        training_script("flux")
    assert err.value.render() == (
        "Cannot train a LoRA on Flux with this tool.\n"
        "  hint: Use an SDXL (e.g. Pony Diffusion V6 XL) or SD 1.x/2.x checkpoint."
    )


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("sd3", "{p} is an SD3 checkpoint; this tool trains SDXL and SD 1.x/2.x LoRAs."),
        ("flux", "{p} is a Flux checkpoint; this tool trains SDXL and SD 1.x/2.x LoRAs."),
        ("lora", "{p} is a LoRA, not a base checkpoint."),
        (
            "unknown",
            "{p}: no SDXL, SD 1.x/2.x, SD3 or Flux keys among its 2 tensors; not a "
            "checkpoint this tool can train on.",
        ),
    ],
)
def test_require_trainable_refuses(tmp_path: Path, family: str, message: str) -> None:
    path = make_checkpoint(tmp_path / "m.safetensors", family)
    with pytest.raises(ModelError) as err:
        require_trainable(path)
    assert err.value.message == message.format(p=path)


def test_missing_model(tmp_path: Path) -> None:
    path = tmp_path / "nope.safetensors"
    with pytest.raises(ModelError) as err:
        require_trainable(path)
    assert err.value.render() == (
        f"Model file not found: {path}\n"
        "  hint: Give the path of a local .safetensors checkpoint (settings key `model`)."
    )


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"PK\x03\x04 this is a zip, not safetensors" * 4)
    with pytest.raises(ModelError) as err:
        require_trainable(path)
    assert err.value.message.startswith(f"{path}: not a safetensors file")
