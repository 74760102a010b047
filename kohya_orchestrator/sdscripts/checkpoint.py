"""Which model family a .safetensors checkpoint is, from its tensor names alone.

Only the header is read (safetensors_header.read_header), so a 7 GB checkpoint is checked
instantly. The key names are those sd-scripts itself loads: library/sdxl_model_util.py
(SDXL: `conditioner.embedders.0/1`, `model.diffusion_model.label_emb`), library/model_util.py
(SD 1.x: `cond_stage_model.transformer.`, SD 2.x: OpenCLIP `cond_stage_model.model.`),
library/sd3_utils.py (`joint_blocks`, `x_embedder`) and library/flux_utils.py
(`double_blocks`, `single_blocks`, `img_in`), and networks/lora.py (`lora_unet_`, `lora_te`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.errors import ModelError
from kohya_orchestrator.sdscripts.trainers import TRAINERS

FAMILY_LABELS = {
    **{family: t.label for family, t in TRAINERS.items()},
    "lora": "a LoRA (not a base checkpoint)",
    "unknown": "an unknown model",
}

_DIFFUSION = "model.diffusion_model."


@dataclass(frozen=True)
class ModelInfo:
    """A checkpoint's family ("sdxl", "sd1", "sd2", "sd3", "flux", "lora", "unknown")."""

    path: Path
    family: str
    label: str
    tensor_count: int
    file_size: int

    @property
    def trainable(self) -> bool:
        """Whether kohya-orch renders and trains this family (the registry has a template)."""
        return self.family in TRAINERS and TRAINERS[self.family].renders

    @property
    def script(self) -> str | None:
        return TRAINERS[self.family].script if self.trainable else None


def family_from_keys(keys: Iterable[str]) -> str:
    """The family for a set of tensor names (pure; order of checks matters)."""
    names = list(keys)
    if any(k.startswith(("lora_unet_", "lora_te", "lora_transformer_")) for k in names):
        return "lora"
    if any(k.startswith("conditioner.embedders.") for k in names) or any(
        k.startswith(_DIFFUSION + "label_emb.") for k in names
    ):
        return "sdxl"
    stripped = [k[len(_DIFFUSION) :] if k.startswith(_DIFFUSION) else k for k in names]
    if any(k.startswith("joint_blocks.") for k in stripped):
        return "sd3"
    if any(k.startswith(("double_blocks.", "single_blocks.")) for k in stripped):
        return "flux"
    if any(k.startswith("cond_stage_model.transformer.") for k in names):
        return "sd1"
    if any(k.startswith("cond_stage_model.model.") for k in names):
        return "sd2"
    return "unknown"


def detect_family(path: Path) -> ModelInfo:
    """Read `path`'s safetensors header and name its family (ModelError if unreadable)."""
    from kohya_orchestrator.sdscripts.safetensors_header import read_header

    header = read_header(path)
    family = family_from_keys(header.tensors)
    return ModelInfo(path, family, FAMILY_LABELS[family], len(header.tensors), header.file_size)


def training_script(family: str) -> str:
    """The sd-scripts training script for a family; ModelError for one it cannot train."""
    found = TRAINERS.get(family)
    if found is None or not found.renders:
        label = FAMILY_LABELS.get(family, family)
        raise ModelError(
            f"Cannot train a LoRA on {label} with this tool.",
            "Use an SDXL (e.g. Pony Diffusion V6 XL) or SD 1.x/2.x checkpoint.",
        )
    return found.script


def require_trainable(path: Path) -> ModelInfo:
    """The family of a base checkpoint this tool can train on, or a clear ModelError."""
    if not path.exists():
        raise ModelError(
            f"Model file not found: {path}",
            "Give the path of a local .safetensors checkpoint (settings key `model`).",
        )
    info = detect_family(path)
    if info.trainable:
        return info
    if info.family == "lora":
        raise ModelError(
            f"{path} is a LoRA, not a base checkpoint.",
            "Give the checkpoint the LoRA is trained on (e.g. ponyDiffusionV6XL.safetensors).",
        )
    if info.family == "unknown":
        raise ModelError(
            f"{path}: no SDXL, SD 1.x/2.x, SD3 or Flux keys among its {info.tensor_count} "
            "tensors; not a checkpoint this tool can train on.",
            "Give a full SDXL or SD 1.x/2.x checkpoint (.safetensors), not a VAE or an embedding.",
        )
    article = "an" if info.label.startswith("S") else "a"
    others = [t for t in TRAINERS.values() if not t.renders]
    raise ModelError(
        f"{path} is {article} {info.label} checkpoint; this tool trains SDXL and SD 1.x/2.x LoRAs.",
        f"sd-scripts has separate scripts for {' and '.join(t.label for t in others)} "
        f"({', '.join(t.script for t in others)}) that this tool does not drive; use an SDXL "
        "or SD 1.x/2.x checkpoint.",
    )
