"""`train --smoke`: the real trainer on a scratch copy of the project, 64x64, two steps.

It proves the whole stack (Python, torch, accelerate, sd-scripts, the model, the config)
works before a run of hours. `plan_smoke` computes the scratch project; `apply_smoke`
writes it (downscaled image copies and a config); `summarize_smoke` reads the trainer's
progress output for the time per step.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import DatasetError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.concepts import caption_path, used_concepts

SMOKE_DIR = "smoke"
SMOKE_SIZE = 64
SMOKE_IMAGES = 2
# Keys that would make the smoke run slow, write into the user's folders, or sample.
_DROP = (
    "sample_every_n_epochs",
    "sample_every_n_steps",
    "sample_prompts",
    "sample_at_first",
    "save_every_n_epochs",
    "save_every_n_steps",
    "save_last_n_epochs",
    "save_last_n_epochs_state",
    "save_last_n_steps",
    "save_last_n_steps_state",
    "max_train_steps",
    "reg_data_dir",
    "dataset_config",
    "resume",
    "wandb_api_key",
    "log_with",
)
_RATE = re.compile(r"(\d+(?:\.\d+)?)(s/it|it/s)")


@dataclass(frozen=True)
class SmokePlan:
    """The scratch project: its layout, which images (source -> copy), and its config."""

    layout: Layout
    images: list[tuple[Path, Path, str]]
    config: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.layout.dest

    @property
    def config_file(self) -> Path:
        return self.layout.config_file

    @property
    def model_dir(self) -> Path:
        return self.layout.model_dir

    def config_text(self) -> str:
        import toml

        return toml.dumps(self.config)


def plan_smoke(project: Layout, values: Mapping[str, Any], *, size: int = SMOKE_SIZE) -> SmokePlan:
    """The smoke run for a rendered config's flattened `values` (pure apart from listing
    the images). The scratch project is a kohya layout of its own in DEST/smoke/."""
    layout = Layout(project.dest / SMOKE_DIR)
    ext = str(values.get("caption_extension") or ".caption")
    train_dir = Path(str(values.get("train_data_dir") or project.img_dir))
    concepts = used_concepts(train_dir) if train_dir.is_dir() else []
    picked = [(c, image) for c in concepts for image in c.images][:SMOKE_IMAGES]
    if not picked:
        raise DatasetError(
            f"--smoke: no training images in {train_dir}.",
            hint="Run `kohya-orch prepare` first, or check train_data_dir in the config.",
        )
    concept_dir = layout.concept_dir(1, picked[0][0].class_tokens)
    images = []
    for concept, image in picked:
        caption_file = caption_path(image, ext)
        caption = (
            caption_file.read_text(encoding="utf-8").split("\n", 1)[0]
            if (caption_file.is_file())
            else concept.class_tokens
        )
        images.append((image, concept_dir / f"{image.stem}.png", caption))
    config = {k: v for k, v in values.items() if k not in _DROP}
    config.update(
        {
            "train_data_dir": str(layout.img_dir),
            "output_dir": str(layout.model_dir),
            "logging_dir": str(layout.log_dir),
            "output_name": "smoke",
            "resolution": f"{size},{size}",
            "enable_bucket": False,
            "train_batch_size": 1,
            "gradient_accumulation_steps": 1,
            "max_train_epochs": 1,
            "save_state": False,
            "cache_latents_to_disk": False,
            "max_data_loader_n_workers": 0,
            "persistent_data_loader_workers": False,
            "caption_extension": ".txt",
            "save_model_as": "safetensors",
        }
    )
    return SmokePlan(layout, images, config)


def apply_smoke(plan: SmokePlan) -> Path:
    """Write the scratch project (replacing an earlier one) and return its config file."""
    from PIL import Image, ImageOps

    from kohya_orchestrator.fsutil import atomic_write_text

    if plan.folder.exists():
        shutil.rmtree(plan.folder)
    size = int(str(plan.config["resolution"]).split(",")[0])
    for source, target, caption in plan.images:
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as image:
            small = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (size, size))
            small.save(target, format="PNG")
        target.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    plan.model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan.config_file, plan.config_text())
    return plan.config_file


@dataclass(frozen=True)
class SmokeSummary:
    seconds_per_step: float | None
    peak_memory_bytes: int | None
    loras: list[str]

    def lines(self) -> list[str]:
        step = f"{self.seconds_per_step:.2f} s" if self.seconds_per_step else "unknown"
        peak = (
            f"{self.peak_memory_bytes / (1 << 30):.1f} GiB (largest process)"
            if self.peak_memory_bytes
            else "unknown"
        )
        made = ", ".join(self.loras) or "none"
        return [f"time per step: {step}", f"peak memory: {peak}", f"LoRA written: {made}"]


def seconds_per_step(output: str) -> float | None:
    """The last rate tqdm printed on the `steps` bar: `12.3s/it` -> 12.3, `2.00it/s` -> 0.5."""
    rate: float | None = None
    for line in re.split(r"[\r\n]", output):
        if "steps" not in line:
            continue
        for value, unit in _RATE.findall(line):
            number = float(value)
            if number > 0:
                rate = number if unit == "s/it" else 1.0 / number
    return rate


def summarize_smoke(output: str, peak_rss_bytes: int | None, model_dir: Path) -> SmokeSummary:
    loras = sorted(p.name for p in model_dir.glob("*.safetensors")) if model_dir.is_dir() else []
    return SmokeSummary(seconds_per_step(output), peak_rss_bytes, loras)
