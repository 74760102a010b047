"""Hardware profiles: the settings that depend on the machine the training runs on.

A profile sits between the defaults and the settings file (defaults < profile < file < --set),
so choosing `profile = "cuda"` changes these values unless the file sets them itself.
"""

from __future__ import annotations

from typing import Any

DEFAULT_PROFILE = "apple-silicon"

# Apple Silicon (MPS): fp16/bf16 mixed precision, xformers and bitsandbytes' 8-bit optimizers
# are the recurring failures there, a validation split crashes (a CUDA-only RNG call), and
# fp32 SDXL needs every memory saver it can get.
_APPLE_SILICON: dict[str, Any] = {
    "mixed_precision": "no",
    "save_precision": "fp16",
    "attention": "sdpa",
    "optimizer": "AdamW",
    "gradient_checkpointing": True,
    "cache_latents": True,
    "cache_latents_to_disk": True,
    "max_data_loader_n_workers": 0,
    "persistent_data_loader_workers": False,
}

# NVIDIA: bf16 mixed precision halves memory and roughly doubles speed; data loader workers
# kept alive between epochs. 8-bit optimizers and xformers stay opt-in (extra packages).
_CUDA: dict[str, Any] = {
    "mixed_precision": "bf16",
    "save_precision": "fp16",
    "attention": "sdpa",
    "optimizer": "AdamW",
    "gradient_checkpointing": True,
    "cache_latents": True,
    "cache_latents_to_disk": True,
    "max_data_loader_n_workers": 2,
    "persistent_data_loader_workers": True,
}

# CPU only: slow but it works (fp32 everywhere; smoke tests and end-to-end checks). The same
# values as Apple Silicon today; a profile of its own so the two can diverge.
_CPU: dict[str, Any] = dict(_APPLE_SILICON)

PROFILES: dict[str, dict[str, Any]] = {
    "apple-silicon": _APPLE_SILICON,
    "cuda": _CUDA,
    "cpu": _CPU,
}

PROFILE_DESCRIPTIONS: dict[str, str] = {
    "apple-silicon": "Apple Silicon (MPS): fp32, sdpa, AdamW, memory savers on",
    "cuda": "NVIDIA GPU: bf16 mixed precision, persistent data loader workers",
    "cpu": "CPU only: fp32, slow; for smoke tests",
}


def profile_values(name: str) -> dict[str, Any]:
    """The settings a profile sets (a copy); KeyError for an unknown profile name."""
    return dict(PROFILES[name])
