"""How big the files of a run are: one LoRA file, one saved state, the cached latents.

One model, used by `plan`, `doctor` and the preflight alike. A LoRA module of rank r holds
r * (in + out) weights (lora_down r x in, lora_up out x r) plus one alpha; the sums of
in + out per family are the trainer registry's `lora_shapes` (networks/lora.py wraps Linear
and 1x1 Conv2d inside the U-Net's Transformer2DModel, and CLIPAttention and CLIPMLP of each
text encoder).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kohya_orchestrator.sdscripts.trainers import trainer

# Three tensors per module (down, up, alpha) of about 110 header bytes each, plus metadata.
_HEADER_PER_MODULE = 3 * 110
_HEADER_METADATA = 16 * 1024
# A saved state holds the fp32 weights plus AdamW's two fp32 moments per weight.
_STATE_BYTES_PER_WEIGHT = 12
# A cached latent: 4 channels of fp32 at 1/8 of the bucket's width and height.
_LATENT_BYTES_PER_CELL = 4 * 4


def lora_params(family: str, rank: int, args: Mapping[str, Any]) -> tuple[int, int]:
    """(weights, modules) of the LoRA: U-Net and text encoders unless one is left out."""
    shapes = trainer(family).lora_shapes
    parts = []
    if not args.get("network_train_text_encoder_only"):
        parts.append(shapes["unet"])
    if not args.get("network_train_unet_only"):
        parts.append(shapes["text_encoder"])
    return sum(per_rank * rank for per_rank, _ in parts), sum(n for _, n in parts)


def lora_file_bytes(family: str, rank: int, args: Mapping[str, Any]) -> int:
    """Estimated size of one saved LoRA file (weights + alphas + safetensors header)."""
    params, modules = lora_params(family, rank, args)
    precision = args.get("save_precision")
    if precision in ("fp16", "bf16") or (
        precision is None and (args.get("full_fp16") or args.get("full_bf16"))
    ):
        width = 2
    else:
        width = 4
    return (params + modules) * width + modules * _HEADER_PER_MODULE + _HEADER_METADATA


def state_bytes(family: str, rank: int, args: Mapping[str, Any]) -> int:
    """Estimated size of one `*-state` folder (AdamW; other optimizers hold less or more)."""
    params, _ = lora_params(family, rank, args)
    return params * _STATE_BYTES_PER_WEIGHT


def latent_cache_bytes(buckets: Iterable[tuple[int, int, int]], flip_aug: bool) -> int:
    """The `.npz` latents `cache_latents_to_disk` writes: (width, height, images) per bucket."""
    total = sum(_LATENT_BYTES_PER_CELL * (w // 8) * (h // 8) * n for w, h, n in buckets)
    return total * (2 if flip_aug else 1)


@dataclass(frozen=True)
class DiskEstimate:
    """What a run writes, part by part (bytes)."""

    lora_file: int
    lora_files: int
    states: int
    latents: int
    state_folders: int = 0  # the state folders left at the end (save_state)

    @property
    def total(self) -> int:
        return self.lora_files + self.states + self.latents


def estimate_disk(
    args: Mapping[str, Any],
    family: str,
    files: int,
    buckets: Iterable[tuple[int, int, int]] = (),
) -> DiskEstimate:
    """The disk a run of `files` saved epochs needs, from its flattened arguments."""
    rank = args.get("network_dim")
    rank = rank if isinstance(rank, int) and not isinstance(rank, bool) and rank > 0 else 4
    one = lora_file_bytes(family, rank, args)
    folders = state_folders(args, files)
    states = state_bytes(family, rank, args) * folders
    latents = (
        latent_cache_bytes(buckets, bool(args.get("flip_aug")))
        if args.get("cache_latents_to_disk")
        else 0
    )
    return DiskEstimate(one, one * files, states, latents, folders)


def state_folders(args: Mapping[str, Any], files: int) -> int:
    """The state folders a run leaves: one per saved epoch but the last, each removed once
    `save_last_n_epochs_state` newer ones exist (else `save_last_n_epochs`, as sd-scripts
    falls back), plus the final `<name>-state` (train_util.save_and_remove_state_on_epoch_end,
    save_state_on_train_end)."""
    if not args.get("save_state") or files < 1:
        return 0
    keep = args.get("save_last_n_epochs_state") or args.get("save_last_n_epochs")
    numbered = files - 1
    if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0:
        numbered = min(numbered, keep)
    return numbered + 1
