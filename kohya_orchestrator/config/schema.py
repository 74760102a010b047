"""What each project setting is: its type, default, comment and place in kohya-orch.toml.

The settings file is written from this table (one comment per setting) and read back
against it, so the two can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kohya_orchestrator.sdscripts.choices import SAMPLERS, SCHEDULERS

# Settings a profile decides (defaults < profile < file < --set); the file written by
# `prepare` shows them commented out, so that switching the profile still changes them.
PROFILE_KEYS = (
    "mixed_precision",
    "save_precision",
    "attention",
    "optimizer",
    "gradient_checkpointing",
    "cache_latents",
    "cache_latents_to_disk",
    "max_data_loader_n_workers",
    "persistent_data_loader_workers",
)

# Names people carry over from the kohya_ss GUI or sd-scripts itself.
ALIASES = {
    "epoch": "epochs",
    "max_train_epochs": "epochs",
    "train_batch_size": "batch_size",
    "lr": "learning_rate",
    "lr_warmup": "warmup_ratio",
    "lr_warmup_steps": "warmup_ratio",
    "warmup": "warmup_ratio",
    "optimizer_type": "optimizer",
    "network_rank": "network_dim",
    "rank": "network_dim",
    "alpha": "network_alpha",
    "max_resolution": "resolution",
    "output_name": "name",
    "pretrained_model_name_or_path": "model",
    "train_data_dir": "images",
    "num_repeats": "repeats",
    "sdpa": "attention",
    "xformers": "attention",
    "keep_n_tokens": "keep_tokens",
    "sampler": "sample_sampler",
}


@dataclass(frozen=True)
class Spec:
    """One setting: TOML kind, default (None: required, derived or optional), comment."""

    key: str
    kind: str  # str, int, float, bool, resolution
    default: Any
    comment: str
    section: str
    choices: tuple[str, ...] | None = None
    required: bool = False
    optional: bool = False  # may stay unset (derived from others, or not used)
    minimum: float | None = None


SPECS: tuple[Spec, ...] = (
    # -- project
    Spec(
        "name",
        "str",
        None,
        "the LoRA's name: output files <name>-000001 ... <name>",
        "project",
        required=True,
    ),
    Spec(
        "trigger",
        "str",
        None,
        "the trigger captions start with; comma-separated tokens set keep_tokens",
        "project",
        required=True,
    ),
    Spec(
        "images",
        "str",
        None,
        "the folder of training images (linked into img/)",
        "project",
        required=True,
    ),
    Spec(
        "repeats",
        "int",
        7,
        "times each image is seen per epoch (img/<repeats>_<name>)",
        "project",
        minimum=1,
    ),
    Spec(
        "model",
        "str",
        None,
        "base checkpoint .safetensors; its keys say SDXL or SD 1.x/2.x",
        "project",
        required=True,
    ),
    Spec(
        "reg",
        "str",
        None,
        "regularisation images folder (leave unset without them)",
        "project",
        optional=True,
    ),
    Spec(
        "reg_repeats",
        "int",
        None,
        "repeats of the regularisation images",
        "project",
        optional=True,
        minimum=1,
    ),
    Spec(
        "class_prompt",
        "str",
        None,
        "broad class of the character (only used with reg)",
        "project",
        optional=True,
    ),
    Spec(
        "profile",
        "str",
        "apple-silicon",
        "machine profile: apple-silicon, cuda or cpu (sets the machine values below)",
        "project",
        choices=("apple-silicon", "cuda", "cpu"),
    ),
    # -- dataset
    Spec(
        "resolution",
        "resolution",
        "512,512",
        "512,512 is fast; 768,768 keeps more detail but is slower and needs more memory",
        "dataset",
    ),
    Spec("enable_bucket", "bool", True, "buckets: mixed aspect ratios without cropping", "dataset"),
    Spec(
        "bucket_reso_steps",
        "int",
        64,
        "bucket size step (SDXL needs a multiple of 32)",
        "dataset",
        minimum=8,
    ),
    Spec(
        "min_bucket_reso",
        "int",
        None,
        "smallest bucket side (default: half the resolution)",
        "dataset",
        optional=True,
        minimum=64,
    ),
    Spec(
        "max_bucket_reso",
        "int",
        None,
        "largest bucket side (default: twice the resolution)",
        "dataset",
        optional=True,
        minimum=64,
    ),
    Spec("caption_extension", "str", ".txt", "caption files next to the images", "dataset"),
    Spec(
        "shuffle_caption",
        "bool",
        True,
        "shuffle caption tags (the first keep_tokens stay)",
        "dataset",
    ),
    Spec(
        "keep_tokens",
        "int",
        None,
        "tokens kept first when shuffling (default: the trigger's token count; 0 to teach "
        "several keywords)",
        "dataset",
        optional=True,
        minimum=0,
    ),
    Spec("flip_aug", "bool", True, "horizontal flips (off for asymmetric characters)", "dataset"),
    # -- training
    Spec("epochs", "int", 15, "passes over the dataset", "training", minimum=1),
    Spec(
        "save_every_n_epochs", "int", 1, "one LoRA per N epochs to compare", "training", minimum=1
    ),
    Spec("batch_size", "int", 4, "2 or 8 by memory", "training", minimum=1),
    Spec(
        "gradient_accumulation_steps",
        "int",
        1,
        "raise to emulate a bigger batch",
        "training",
        minimum=1,
    ),
    Spec("learning_rate", "float", 2.5e-5, "base learning rate", "training", minimum=0),
    Spec(
        "unet_lr",
        "float",
        2.5e-5,
        "higher (1e-4) learns details, lower (1e-5) the big picture",
        "training",
        minimum=0,
    ),
    Spec(
        "text_encoder_lr",
        "float",
        2.5e-5,
        "higher (5e-5) = rigid prompt association, lower (1e-5) = flexible",
        "training",
        minimum=0,
    ),
    Spec(
        "lr_scheduler",
        "str",
        "constant",
        "cosine if the result looks overtrained",
        "training",
        choices=SCHEDULERS,
    ),
    Spec(
        "warmup_ratio",
        "float",
        0.05,
        "share of the steps spent warming up (0 = none)",
        "training",
        minimum=0,
    ),
    Spec(
        "network_dim", "int", 16, "rank: 32 for fidelity, 8 if it overfits", "training", minimum=1
    ),
    Spec(
        "network_alpha",
        "float",
        None,
        "alpha (default: rank / 2)",
        "training",
        optional=True,
        minimum=0,
    ),
    Spec(
        "seed", "int", 42, "fixed seed: the same settings give the same run", "training", minimum=0
    ),
    Spec("save_state", "bool", False, "also save resumable state folders (large)", "training"),
    Spec(
        "clip_skip",
        "int",
        2,
        "2 for anime, 1 for realistic; SDXL ignores it in training: a hint for Forge",
        "training",
        minimum=1,
    ),
    # -- machine (profile)
    Spec(
        "mixed_precision",
        "str",
        None,
        "no, fp16 or bf16 (fp16/bf16 fail on Apple Silicon)",
        "machine",
        choices=("no", "fp16", "bf16"),
    ),
    Spec(
        "save_precision",
        "str",
        None,
        "precision of the saved LoRA files",
        "machine",
        choices=("float", "fp16", "bf16"),
    ),
    Spec(
        "attention",
        "str",
        None,
        "sdpa everywhere; xformers is NVIDIA-only",
        "machine",
        choices=("sdpa", "xformers", "mem_eff_attn"),
    ),
    Spec("optimizer", "str", None, "AdamW; AdamW8bit needs NVIDIA (bitsandbytes)", "machine"),
    Spec("gradient_checkpointing", "bool", None, "saves memory, costs some speed", "machine"),
    Spec("cache_latents", "bool", None, "encode images once (saves memory and time)", "machine"),
    Spec("cache_latents_to_disk", "bool", None, "keep the cached latents between runs", "machine"),
    Spec("max_data_loader_n_workers", "int", None, "data loader processes", "machine", minimum=0),
    Spec("persistent_data_loader_workers", "bool", None, "keep workers between epochs", "machine"),
    # -- sampling
    Spec(
        "sample_every_n_epochs",
        "int",
        0,
        "sample images every N epochs (0 = off)",
        "sampling",
        minimum=0,
    ),
    Spec(
        "sample_sampler",
        "str",
        "euler_a",
        "sampler for the sample images",
        "sampling",
        choices=SAMPLERS,
    ),
    Spec("sample_steps", "int", 28, "sampling steps per image", "sampling", minimum=1),
    Spec("sample_cfg", "float", 7.0, "CFG scale of the sample images", "sampling", minimum=0),
    Spec(
        "sample_seed",
        "int",
        1234,
        "seed of the first prompt (+1 per prompt)",
        "sampling",
        minimum=0,
    ),
    Spec(
        "sample_size",
        "resolution",
        None,
        "sample image size (default: the resolution)",
        "sampling",
        optional=True,
    ),
)

SPEC_BY_KEY: dict[str, Spec] = {s.key: s for s in SPECS}

# Shown (commented out) in a new settings file for optional settings left unset.
EXAMPLES: dict[str, Any] = {
    "reg": "/path/to/regularisation_images",
    "reg_repeats": 1,
    "class_prompt": "1boy, man, male focus, male, solo",
}

SECTION_TITLES = {
    "project": "Project",
    "dataset": "Dataset",
    "training": "Training",
    "machine": "Machine: set by the profile unless you uncomment a line",
    "sampling": "Sample images during training",
}
