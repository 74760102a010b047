"""The trainer registry: for each model family, the sd-scripts script, our template, its LoRA.

Every fact that depends on the family lives here and nowhere else: which script trains it,
which template renders its config, the label users read, the LoRA's module shapes (for file
sizes), the keys the family adds or ignores. Adding a trainer is one `Trainer` entry here plus
one template in templates/ (see the README, "Adding a trainer").

Flux and SD3 are registered for `validate` (their scripts' argument facts ship too) but have
no template: kohya-orch does not render or train them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trainer:
    """One model family and the sd-scripts script that trains LoRAs for it."""

    family: str
    label: str
    script: str
    # The packaged template that renders its config; None: lint only (not rendered here).
    template: str | None = None
    network_module: str = "networks.lora"
    # Keys the family always adds to a rendered config (SD 2.x: v2 = true).
    fixed_args: Mapping[str, Any] = field(default_factory=dict)
    # Whether training reads clip_skip (SDXL ignores it: a generation-time hint for Forge).
    uses_clip_skip: bool = True
    # bucket_reso_steps must be a multiple of this (sd-scripts asserts it).
    bucket_multiple: int = 64
    # LoRA module shapes of networks.lora: part -> (sum of in+out features per rank unit,
    # number of modules). See lora_size.py for how they were counted.
    lora_shapes: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def renders(self) -> bool:
        """Whether kohya-orch renders and trains this family (it has a template)."""
        return self.template is not None


# The U-Net figures were checked by building sd-scripts' own U-Net classes on the meta device
# and summing the modules networks/lora.py wraps (SDXL 2,659,840 / 722; SD1 423,936 / 192;
# SD2 432,128 / 192). Text encoders: per layer 4 x 2H (q, k, v, out) + 2 x (H + 4H) (fc1,
# fc2); CLIP-L 12 x 768, OpenCLIP-bigG 32 x 1280, OpenCLIP-H 23 x 1024.
TRAINERS: dict[str, Trainer] = {
    t.family: t
    for t in (
        Trainer(
            "sdxl",
            "SDXL",
            "sdxl_train_network.py",
            template="sdxl_lora.toml.j2",
            uses_clip_skip=False,
            bucket_multiple=32,
            lora_shapes={"unet": (2_659_840, 722), "text_encoder": (903_168, 264)},
        ),
        Trainer(
            "sd1",
            "SD 1.x",
            "train_network.py",
            template="sd15_lora.toml.j2",
            lora_shapes={"unet": (423_936, 192), "text_encoder": (165_888, 72)},
        ),
        Trainer(
            "sd2",
            "SD 2.x",
            "train_network.py",
            template="sd15_lora.toml.j2",
            fixed_args={"v2": True},
            lora_shapes={"unet": (432_128, 192), "text_encoder": (423_936, 138)},
        ),
        Trainer(
            "sd3",
            "SD3",
            "sd3_train_network.py",
            network_module="networks.lora_sd3",
            uses_clip_skip=False,
            bucket_multiple=32,
        ),
        Trainer(
            "flux",
            "Flux",
            "flux_train_network.py",
            network_module="networks.lora_flux",
            uses_clip_skip=False,
            bucket_multiple=32,
        ),
    )
}
DEFAULT_FAMILY = "sdxl"
# A config that says neither SD 1.x nor SDXL: checked with the SDXL script's options (they
# include train_network.py's), and without the rules in which the two differ (clip_skip,
# bucket steps of 64 or 32).
UNDETERMINED = Trainer(
    "sd1-or-sdxl",
    "SD 1.x or SDXL",
    "sdxl_train_network.py",
    uses_clip_skip=True,
    bucket_multiple=32,
)


def trainer(family: str) -> Trainer:
    """The registered trainer of `family` (KeyError for one that is not registered)."""
    return TRAINERS[family]


def scripts() -> tuple[str, ...]:
    """Every training script of the registry, in registry order, once each."""
    return tuple(dict.fromkeys(t.script for t in TRAINERS.values()))


def rendered_scripts() -> tuple[str, ...]:
    """The scripts kohya-orch renders configs for (SDXL and SD 1.x/2.x)."""
    return tuple(dict.fromkeys(t.script for t in TRAINERS.values() if t.renders))


def default_script() -> str:
    return TRAINERS[DEFAULT_FAMILY].script


def for_script(script: str, *, v2: bool = False) -> Trainer:
    """The trainer of a script name (`train_network.py` is SD 1.x, or SD 2.x with v2)."""
    name = script.rsplit("/", 1)[-1]
    matches = [t for t in TRAINERS.values() if t.script == name]
    if not matches:
        raise KeyError(script)
    if len(matches) > 1:
        wanted = "sd2" if v2 else "sd1"
        return next(t for t in matches if t.family == wanted)
    return matches[0]


def for_network_module(module: str) -> Trainer | None:
    """The trainer whose LoRA module this is (`networks.lora_flux` -> Flux); None if shared."""
    found = [t for t in TRAINERS.values() if t.network_module == module]
    return found[0] if len(found) == 1 else None
