"""Every project setting, declared once: kind, default, comment, section, sd-scripts key, GUI name.

The `Settings` dataclass *is* the schema: each field is declared with `setting(...)`, and
everything else derives from those declarations: `SPECS` (read by the settings parser, the
settings file writer and the glossary), the sd-scripts arguments (`render.build_args` loops
over `Spec.arg`), the names people carry over from the kohya_ss GUI or sd-scripts
(`ALIASES`), and which sd-scripts key comes from which setting (`SETTING_FOR_ARG`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.concepts import Concept
from kohya_orchestrator.config.profiles import DEFAULT_PROFILE, PROFILES
from kohya_orchestrator.config.spec import (
    CLIP_SKIP,
    FLAG,
    SAMPLING,
    TEXT_ENCODER_LR,
    WARMUP,
    Spec,
    aliases_of,
    parse_resolution,
    setting,
    settings_for_args,
    spec_of,
)
from kohya_orchestrator.sdscripts.choices import SAMPLERS, SCHEDULERS, is_scheduler

# The sample-prompt presets: each is the template sample_prompts<_preset>.txt.j2.
SAMPLE_PRESETS = ("neutral", "pony")


@dataclass
class Settings:
    """The resolved settings of one project: every derived value filled in."""

    # -- project
    name: str = setting(
        "project",
        "the LoRA's name: output files <name>-000001 ... <name>",
        required=True,
        arg="output_name",
        gui="output_name",
    )
    trigger: str = setting(
        "project",
        "the trigger captions start with; comma-separated tokens set keep_tokens",
        required=True,
        arg=None,
        gui="instance_prompt",
    )
    images: str = setting(
        "project",
        "the folder of training images (linked into img/)",
        required=True,
        arg=None,
        gui="train_data_dir",
    )
    repeats: int = setting(
        "project",
        "times each image is seen per epoch (img/<repeats>_<name>)",
        7,
        minimum=1,
        arg=None,
        aliases=("num_repeats",),
        gui=None,
    )
    model: str = setting(
        "project",
        "base checkpoint .safetensors; its keys say SDXL or SD 1.x/2.x",
        required=True,
        arg="pretrained_model_name_or_path",
        gui="pretrained_model_name_or_path",
    )
    reg: str | None = setting(
        "project",
        "regularisation images folder (leave unset without them)",
        optional=True,
        arg=None,
        gui="reg_data_dir",
        example="/path/to/regularisation_images",
    )
    reg_repeats: int | None = setting(
        "project",
        "repeats of the regularisation images",
        optional=True,
        minimum=1,
        arg=None,
        example=1,
        gui=None,
    )
    class_prompt: str | None = setting(
        "project",
        "broad class of the character (only used with reg)",
        optional=True,
        arg=None,
        example="1boy, man, male focus, male, solo",
    )
    concepts: Sequence[Concept] | None = setting(
        "project",
        "more image folders (the GUI's concepts), each img/<repeats>_<class_tokens>",
        kind="concepts",
        optional=True,
        arg=None,
        gui=None,
        example=[Concept("/path/to/more_images", 3, "hakone_casual")],
    )
    reg_concepts: Sequence[Concept] | None = setting(
        "project",
        "more regularisation folders, each reg/<repeats>_<class_tokens>",
        kind="concepts",
        optional=True,
        arg=None,
        gui=None,
        example=[Concept("/path/to/more_reg_images", 1, "1girl, woman")],
    )
    profile: str = setting(
        "project",
        f"machine profile: {', '.join(PROFILES)} (sets the machine values below)",
        DEFAULT_PROFILE,
        choices=tuple(PROFILES),
        arg=None,
        gui=None,
    )
    # -- dataset
    resolution: str = setting(
        "dataset",
        "512,512 is fast; 768,768 keeps more detail but is slower and needs more memory",
        "512,512",
        kind="resolution",
        gui="max_resolution",
    )
    enable_bucket: bool = setting(
        "dataset", "buckets: mixed aspect ratios without cropping", True, gui="enable_bucket"
    )
    bucket_reso_steps: int = setting(
        "dataset", "bucket size step (SDXL needs a multiple of 32)", 64, minimum=8
    )
    min_bucket_reso: int = setting(
        "dataset", "smallest bucket side (default: half the resolution)", optional=True, minimum=64
    )
    max_bucket_reso: int = setting(
        "dataset", "largest bucket side (default: twice the resolution)", optional=True, minimum=64
    )
    caption_extension: str = setting(
        "dataset", "caption files next to the images", ".txt", gui="caption_extension"
    )
    shuffle_caption: bool = setting(
        "dataset", "shuffle caption tags (the first keep_tokens stay)", True
    )
    keep_tokens: int = setting(
        "dataset",
        "tokens kept first when shuffling (default: the trigger's token count; 0 to teach "
        "several keywords)",
        optional=True,
        minimum=0,
        aliases=("keep_n_tokens",),
    )
    flip_aug: bool = setting(
        "dataset", "horizontal flips (off for asymmetric characters)", True, gui="flip_aug"
    )
    # -- training
    epochs: int = setting(
        "training",
        "passes over the dataset",
        15,
        minimum=1,
        arg="max_train_epochs",
        gui="epoch",
    )
    save_every_n_epochs: int = setting(
        "training", "one LoRA per N epochs to compare", 1, minimum=1, gui="save_every_n_epochs"
    )
    batch_size: int = setting(
        "training",
        "2 or 8 by memory",
        4,
        minimum=1,
        arg="train_batch_size",
        gui="train_batch_size",
    )
    gradient_accumulation_steps: int = setting(
        "training", "raise to emulate a bigger batch", 1, minimum=1
    )
    learning_rate: float = setting(
        "training",
        "base learning rate",
        2.5e-5,
        minimum=0,
        aliases=("lr",),
    )
    unet_lr: float = setting(
        "training",
        "higher (1e-4) learns details, lower (1e-5) the big picture",
        2.5e-5,
        minimum=0,
    )
    text_encoder_lr: float = setting(
        "training",
        "higher (5e-5) = rigid prompt association, lower (1e-5) = flexible",
        2.5e-5,
        minimum=0,
        render=TEXT_ENCODER_LR,
    )
    lr_scheduler: str = setting(
        "training",
        "cosine if the result looks overtrained",
        "constant",
        choices=SCHEDULERS,
        accepts=is_scheduler,
    )
    warmup_ratio: float = setting(
        "training",
        "share of the steps spent warming up (0 = none)",
        0.05,
        minimum=0,
        arg="lr_warmup_steps",
        render=WARMUP,
        gui="lr_warmup",
        aliases=("warmup",),
    )
    network_dim: int = setting(
        "training",
        "rank: 32 for fidelity, 8 if it overfits",
        16,
        minimum=1,
        aliases=("network_rank", "rank"),
    )
    network_alpha: float = setting(
        "training",
        "alpha (default: rank / 2)",
        optional=True,
        minimum=0,
        aliases=("alpha",),
    )
    seed: int = setting(
        "training", "fixed seed: the same settings give the same run", 42, minimum=0, gui="seed"
    )
    save_state: bool = setting(
        "training", "resumable state, so Ctrl-C loses at most one epoch (train --resume)", True
    )
    save_last_n_epochs_state: int = setting(
        "training", "state folders kept: the last N saved epochs (0 = all; each is large)", 1
    )
    clip_skip: int = setting(
        "training",
        "2 for anime, 1 for realistic; SDXL ignores it in training: a hint for Forge",
        2,
        minimum=1,
        render=CLIP_SKIP,
    )
    # -- machine (profile)
    mixed_precision: str = setting(
        "machine",
        "no, fp16 or bf16 (fp16/bf16 fail on Apple Silicon)",
        choices=("no", "fp16", "bf16"),
        profile=True,
    )
    save_precision: str = setting(
        "machine",
        "precision of the saved LoRA files",
        choices=("float", "fp16", "bf16"),
        profile=True,
    )
    attention: str = setting(
        "machine",
        "sdpa everywhere; xformers is NVIDIA-only",
        choices=("sdpa", "xformers", "mem_eff_attn"),
        profile=True,
        arg=None,
        render=FLAG,
        gui="xformers",
        aliases=("sdpa", "cross_attention"),
    )
    optimizer: str = setting(
        "machine",
        "AdamW; AdamW8bit needs NVIDIA (bitsandbytes)",
        profile=True,
        arg="optimizer_type",
    )
    gradient_checkpointing: bool = setting(
        "machine", "saves memory, costs some speed", profile=True
    )
    cache_latents: bool = setting(
        "machine", "encode images once (saves memory and time)", profile=True
    )
    cache_latents_to_disk: bool = setting(
        "machine", "keep the cached latents between runs", profile=True
    )
    max_data_loader_n_workers: int = setting(
        "machine", "data loader processes", minimum=0, profile=True
    )
    persistent_data_loader_workers: bool = setting(
        "machine", "keep workers between epochs", profile=True
    )
    # -- sampling
    sample_every_n_epochs: int = setting(
        "sampling",
        "sample images every N epochs (0 = off)",
        0,
        minimum=0,
        render=SAMPLING,
    )
    sample_sampler: str = setting(
        "sampling",
        "sampler for the sample images",
        "euler_a",
        choices=SAMPLERS,
        render=SAMPLING,
        aliases=("sampler",),
    )
    sample_steps: int = setting(
        "sampling", "sampling steps per image", 28, minimum=1, arg=None, gui=None
    )
    sample_cfg: float = setting(
        "sampling", "CFG scale of the sample images", 7.0, minimum=0, arg=None, gui=None
    )
    sample_seed: int = setting(
        "sampling", "seed of the first prompt (+1 per prompt)", 1234, minimum=0, arg=None, gui=None
    )
    sample_prompts_preset: str = setting(
        "sampling",
        "neutral, or pony: Pony's score tags before the trigger and the class prompt",
        "neutral",
        choices=SAMPLE_PRESETS,
        arg=None,
        gui=None,
    )
    sample_size: str = setting(
        "sampling",
        "sample image size (default: the resolution)",
        kind="resolution",
        optional=True,
        arg=None,
        gui=None,
    )
    # -- bookkeeping (not settings)
    # Raw sd-scripts keys from the [sd_scripts] table, applied last in the config.
    sd_scripts: dict[str, Any] = field(default_factory=dict)
    # Where each setting came from: default, profile, file, --set or derived.
    origins: dict[str, str] = field(default_factory=dict)
    # Derived values explained to the user ("keep_tokens = 4: ...").
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def sampling(self) -> bool:
        """True when sample images are generated during training."""
        return self.sample_every_n_epochs > 0

    @property
    def train_concepts(self) -> list[Concept]:
        """Every training image folder: `images` / `repeats` first, then `concepts`."""
        return [Concept(self.images, self.repeats), *(self.concepts or [])]

    @property
    def reg_concept_list(self) -> list[Concept]:
        """Every regularisation folder: `reg` / `reg_repeats` first, then `reg_concepts`."""
        first = [Concept(self.reg, self.reg_repeats or 1)] if self.reg else []
        return [*first, *(self.reg_concepts or [])]

    @property
    def width_height(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)

    @property
    def sample_width_height(self) -> tuple[int, int]:
        return parse_resolution(self.sample_size)

    def values(self) -> dict[str, Any]:
        """The settings as a plain dict (bookkeeping fields left out but [sd_scripts])."""
        data = dataclasses.asdict(self)
        for key in ("origins", "notes", "path"):
            data.pop(key)
        return data


SPECS: tuple[Spec, ...] = tuple(
    spec_of(f) for f in dataclasses.fields(Settings) if "spec" in f.metadata
)
SPEC_BY_KEY: dict[str, Spec] = {s.key: s for s in SPECS}
PROFILE_KEYS: tuple[str, ...] = tuple(s.key for s in SPECS if s.profile)
# Names people carry over from the kohya_ss GUI or sd-scripts itself -> our setting.
ALIASES: dict[str, str] = aliases_of(SPECS)
# sd-scripts keys whose value comes from a differently named setting in kohya-orch.toml.
SETTING_FOR_ARG: dict[str, str] = {
    **settings_for_args(SPECS),
    "sample_prompts": "sample_every_n_epochs",
}
