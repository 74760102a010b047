"""Test data for the results commands: LoRA-like safetensors files and sd-scripts sample PNGs.

The LoRA files are real safetensors files written with the safetensors package (tiny
tensors, the key names of networks/lora.py) carrying the ss_* metadata train_network.py
writes; the sample PNGs are named as train_util.sample_image_inference names them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SESSION = "1234567890"
STARTED = "1763935200.5"


def lora_metadata(
    name: str,
    epoch: int,
    *,
    epochs: int = 15,
    batches: int = 42,
    steps: int | None = None,
    dim: int = 16,
    alpha: float = 8.0,
    lr: float = 2.5e-05,
    model: str = "ponyDiffusionV6XL_v6StartWithThisOne.safetensors",
    session: str = SESSION,
) -> dict[str, str]:
    """Metadata as sd-scripts writes it (every value a string; Python reprs of args)."""
    return {
        "ss_session_id": session,
        "ss_training_started_at": STARTED,
        "ss_output_name": name,
        "ss_learning_rate": str(lr),
        "ss_text_encoder_lr": str(lr),
        "ss_unet_lr": str(lr),
        "ss_num_train_images": "168",
        "ss_num_reg_images": "0",
        "ss_num_batches_per_epoch": str(batches),
        "ss_num_epochs": str(epochs),
        "ss_gradient_accumulation_steps": "1",
        "ss_max_train_steps": str(batches * epochs),
        "ss_lr_warmup_steps": "31",
        "ss_lr_scheduler": "constant_with_warmup",
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(dim),
        "ss_network_alpha": str(alpha),
        "ss_mixed_precision": "no",
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_clip_skip": "2",
        "ss_seed": "42",
        "ss_optimizer": "torch.optim.adamw.AdamW",
        "ss_sd_model_name": model,
        "ss_new_sd_model_hash": "67ab2fd8ec439a89b3fedb15cc65f54336af163c7eb5e4f2acc98f090a29b0b3",
        "ss_sd_model_hash": "e577480d",
        "ss_resolution": "(768, 768)",
        "ss_batch_size_per_device": "4",
        "ss_total_batch_size": "4",
        "ss_dataset_dirs": json.dumps({"7_yumoto_hakone": {"n_repeats": 7, "img_count": 24}}),
        "ss_tag_frequency": json.dumps(
            {
                "7_yumoto_hakone": {
                    "yumoto_hakone": 24,
                    "glasses": 24,
                    "1boy": 22,
                    "suit": 17,
                    "necktie": 15,
                    "smile": 6,
                }
            }
        ),
        "ss_training_finished_at": str(float(STARTED) + 60.0 * epoch),
        "ss_steps": str(batches * epoch if steps is None else steps),
        "ss_epoch": str(epoch),
        "sshs_model_hash": "0" * 64,
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
    }


def write_lora(
    path: Path, metadata: dict[str, str] | None, *, rank: int = 4, mtime: float | None = None
) -> Path:
    """A small but real LoRA file: two modules of kohya key names, rank `rank`."""
    import numpy as np
    from safetensors.numpy import save_file

    tensors = {}
    for module in (
        "lora_unet_input_blocks_4_1_proj_in",
        "lora_te1_text_model_encoder_layers_0_mlp_fc1",
    ):
        tensors[f"{module}.lora_down.weight"] = np.zeros((rank, 8), dtype=np.float16)
        tensors[f"{module}.lora_up.weight"] = np.zeros((8, rank), dtype=np.float16)
        tensors[f"{module}.alpha"] = np.array(rank / 2, dtype=np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def write_run(
    dest: Path,
    name: str = "yumoto_hakone",
    *,
    epochs: int = 15,
    save_every: int = 1,
    upto: int | None = None,
    **meta: object,
) -> list[Path]:
    """The files a finished (or, with `upto`, running) run writes in DEST/model/."""
    paths = []
    last = epochs if upto is None else upto
    for epoch in range(1, last + 1):
        if epoch < epochs and epoch % save_every:
            continue
        stem = name if epoch == epochs else f"{name}-{epoch:06d}"
        md = lora_metadata(name, epoch, epochs=epochs, **meta)  # type: ignore[arg-type]
        mtime = 1763935200.0 + 600 * epoch
        paths.append(write_lora(dest / "model" / f"{stem}.safetensors", md, mtime=mtime))
    return paths


def write_settings(dest: Path, **values: object) -> Path:
    """A kohya-orch.toml as a user would have it after `prepare` (plus `values`)."""
    doc = {
        "name": "yumoto_hakone",
        "trigger": "yumoto_hakone",
        "images": str(dest / "images"),
        "model": "/models/ponyDiffusionV6XL_v6StartWithThisOne.safetensors",
        "epochs": 15,
        "save_every_n_epochs": 1,
        "network_dim": 16,
        "network_alpha": 8.0,
        "learning_rate": 2.5e-05,
        "unet_lr": 2.5e-05,
        "text_encoder_lr": 2.5e-05,
    }
    doc.update(values)
    lines = []
    for key, value in doc.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = dest / "kohya-orch.toml"
    dest.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample_name(
    name: str | None, epoch: int, index: int, time: str = "20261123221000", seed: int | None = 1234
) -> str:
    """train_util.sample_image_inference's file name."""
    prefix = "" if name is None else name + "_"
    seed_part = "" if seed is None else f"_{seed}"
    return f"{prefix}e{epoch:06d}_{index:02d}_{time}{seed_part}.png"


def write_sample(
    dest: Path, file_name: str, color: tuple[int, int, int], size: tuple[int, int] = (512, 512)
) -> Path:
    from PIL import Image

    path = dest / "model" / "sample" / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path
