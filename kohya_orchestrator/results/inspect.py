"""`kohya-orch inspect`: a LoRA's training metadata, or a checkpoint's family, from the header.

Only the safetensors header is read (safetensors_header.read_header), so a 7 GB checkpoint
is inspected as fast as a 20 MB LoRA. Named lora_inspect so it never shadows the stdlib
`inspect` module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kohya_orchestrator.results.checks import steps_per_epoch
from kohya_orchestrator.sdscripts.safetensors_header import (
    SafetensorsHeader,
    loads_bounded,
    read_header,
)

DEFAULT_TOP_TAGS = 15
# Key fragments that only LoRA-style networks have (kohya, diffusers/PEFT, LyCORIS).
_LORA_MARKERS = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", ".hada_w1_a", ".lokr_w1")


# train_network.py's model_version strings (model_util, sdxl_model_util, flux_utils).
_BASE_LABELS = {
    "sdxl_base_v1-0": "SDXL",
    "sd_v1": "SD 1.x",
    "sd_v1_v": "SD 1.x (v-prediction)",
    "sd_v2": "SD 2.x",
    "sd_v2_v": "SD 2.x (v-prediction)",
    "flux1": "Flux",
}


@dataclass(frozen=True)
class DatasetDir:
    """One training folder as recorded in ss_dataset_dirs."""

    name: str
    repeats: int | None
    images: int | None


@dataclass
class Inspection:
    """What a .safetensors file is, in rows a person can read."""

    path: Path
    kind: str  # "lora" or "checkpoint"
    family: str
    label: str
    file_size: int
    tensor_count: int
    rows: list[tuple[str, str]] = field(default_factory=list)
    dataset_dirs: list[DatasetDir] = field(default_factory=list)
    top_tags: list[tuple[str, int]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "kind": self.kind,
            "family": self.family,
            "label": self.label,
            "file_size": self.file_size,
            "tensors": self.tensor_count,
            "details": dict(self.rows),
            "dataset_dirs": [
                {"dir": d.name, "repeats": d.repeats, "images": d.images} for d in self.dataset_dirs
            ],
            "top_tags": [{"tag": t, "count": c} for t, c in self.top_tags],
            "metadata": self.metadata,
        }


def is_lora(header: SafetensorsHeader) -> bool:
    """A network (LoRA, LoCon, LoHa...) rather than a full model."""
    if "ss_network_module" in header.metadata:
        return True
    return any(
        k.startswith(("lora_unet_", "lora_te")) or any(m in k for m in _LORA_MARKERS)
        for k in header.tensors
    )


def inspect_file(path: Path, *, top_tags: int = DEFAULT_TOP_TAGS) -> Inspection:
    """Read `path`'s header and describe it; raises ModelError for a non-safetensors file."""
    header = read_header(path)
    if is_lora(header):
        return describe_lora(header, top_tags=top_tags)
    from kohya_orchestrator.sdscripts.checkpoint import detect_family

    info = detect_family(path)
    rows = [("family", info.label)]
    if info.script:
        rows.append(("train with", info.script))
    else:
        rows.append(("train with", "not supported by this tool (SDXL, SD 1.x and SD 2.x are)"))
    title = "model" if info.family == "unknown" else "checkpoint"
    if info.family == "unknown":
        rows.append(("first keys", ", ".join(sorted(header.tensors)[:3]) or "(none)"))
    return Inspection(
        path=path,
        kind="checkpoint",
        family=info.family,
        label=info.label if info.family == "unknown" else f"{info.label} {title}",
        file_size=header.file_size,
        tensor_count=len(header.tensors),
        rows=rows,
        metadata=header.metadata,
    )


def describe_lora(header: SafetensorsHeader, *, top_tags: int = DEFAULT_TOP_TAGS) -> Inspection:
    """The training metadata of a LoRA, as readable rows (pure: works on the header)."""
    meta = header.metadata
    rows: list[tuple[str, str]] = []

    def add(label: str, value: str | None) -> None:
        if value not in (None, "", "None"):
            rows.append((label, str(value)))

    add("output name", meta.get("ss_output_name"))
    module = meta.get("ss_network_module")
    args = meta.get("ss_network_args")
    add("network", f"{module} {args}" if module and args else module)
    dim, alpha = meta.get("ss_network_dim"), meta.get("ss_network_alpha")
    if dim or alpha:
        add("dim / alpha", f"{_num(dim)} / {_num(alpha)}")
    rank = structural_rank(header)
    if rank is not None and _num(dim) != str(rank):
        add("rank (from shapes)", str(rank))
    modules = sum(1 for k in header.tensors if k.endswith((".lora_down.weight", ".lora_A.weight")))
    add("modules", str(modules) if modules else None)
    add("base model version", meta.get("ss_base_model_version"))
    add("epoch", _of(meta.get("ss_epoch"), meta.get("ss_num_epochs")))
    steps = _of(meta.get("ss_steps"), meta.get("ss_max_train_steps"))
    per_epoch = steps_per_epoch(meta)
    add("steps", f"{steps} ({per_epoch} per epoch)" if steps and per_epoch else steps)
    add("learning rate", meta.get("ss_learning_rate"))
    add("U-Net LR", meta.get("ss_unet_lr"))
    add("text encoder LR", meta.get("ss_text_encoder_lr"))
    add("optimizer", meta.get("ss_optimizer"))
    scheduler = meta.get("ss_lr_scheduler")
    warmup = meta.get("ss_lr_warmup_steps")
    if scheduler and warmup not in (None, "0", "None"):
        scheduler = f"{scheduler} (warmup {_warmup_text(warmup)})"
    add("scheduler", scheduler)
    add("base model", meta.get("ss_sd_model_name"))
    add("base model hash", _hash(meta.get("ss_new_sd_model_hash"), meta.get("ss_sd_model_hash")))
    add("resolution", meta.get("ss_resolution"))
    add("batch size", meta.get("ss_total_batch_size") or meta.get("ss_batch_size_per_device"))
    add("training images", meta.get("ss_num_train_images"))
    add("mixed precision", meta.get("ss_mixed_precision"))
    add("clip skip", meta.get("ss_clip_skip"))
    add("seed", meta.get("ss_seed"))
    add("started", _when(meta.get("ss_training_started_at")))
    add("finished", _when(meta.get("ss_training_finished_at")))
    add("sd-scripts commit", meta.get("ss_sd_scripts_commit_hash"))
    if not any(k.startswith("ss_") for k in meta):
        rows.append(("training metadata", "none (not written by sd-scripts, or stripped)"))
    return Inspection(
        path=header.path,
        kind="lora",
        family="lora",
        label=f"LoRA for {base_label(meta.get('ss_base_model_version'))}",
        file_size=header.file_size,
        tensor_count=len(header.tensors),
        rows=rows,
        dataset_dirs=dataset_dirs(meta),
        top_tags=most_frequent_tags(meta, top_tags),
        metadata=dict(meta),
    )


def base_label(version: str | None) -> str:
    """ss_base_model_version as people say it: "sdxl_base_v1-0" -> "SDXL"."""
    if not version or version == "None":
        return "an unknown base model"
    return _BASE_LABELS.get(version, version)


def structural_rank(header: SafetensorsHeader) -> int | None:
    """The LoRA rank read from the down-projection shapes (the largest, for mixed ranks)."""
    ranks = [
        info.shape[0]
        for key, info in header.tensors.items()
        if key.endswith((".lora_down.weight", ".lora_A.weight")) and info.shape
    ]
    return max(ranks) if ranks else None


def dataset_dirs(meta: dict[str, str]) -> list[DatasetDir]:
    """ss_dataset_dirs: `{"7_yumoto_hakone": {"n_repeats": 7, "img_count": 24}}`."""
    doc = _json(meta.get("ss_dataset_dirs"))
    if not isinstance(doc, dict):
        return []
    out = []
    for name, info in doc.items():
        info = info if isinstance(info, dict) else {}
        out.append(
            DatasetDir(str(name), _as_int(info.get("n_repeats")), _as_int(info.get("img_count")))
        )
    return out


def most_frequent_tags(meta: dict[str, str], limit: int) -> list[tuple[str, int]]:
    """The top `limit` caption tags over all folders of ss_tag_frequency, most frequent first."""
    doc = _json(meta.get("ss_tag_frequency"))
    if not isinstance(doc, dict) or limit <= 0:
        return []
    counts: Counter[str] = Counter()
    for tags in doc.values():
        if isinstance(tags, dict):
            for tag, n in tags.items():
                value = _as_int(n)
                if value:
                    counts[str(tag)] += value
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return loads_bounded(text)
    except ValueError:  # not JSON, or past the depth and number limits
        return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _num(text: str | None) -> str:
    """ "8.0" -> "8", "0.5" -> "0.5", None -> "?"."""
    if text in (None, "None"):
        return "?"
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _of(value: str | None, total: str | None) -> str | None:
    if value in (None, "None"):
        return None
    return f"{value} of {total}" if total not in (None, "None") else value


def _hash(sha256: str | None, legacy: str | None) -> str | None:
    # Forge and Civitai show the first 10 hex digits of the SHA-256 ("AutoV2").
    if sha256 and sha256 != "None":
        return f"{sha256} (AutoV2 {sha256[:10].upper()})"
    return f"{legacy} (legacy hash)" if legacy and legacy != "None" else None


def _when(stamp: str | None) -> str | None:
    try:
        seconds = float(stamp) if stamp else None
    except ValueError:
        return stamp
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _warmup_text(value: str) -> str:
    """sd-scripts records lr_warmup_steps as given: an int is steps, a float below 1 a ratio."""
    try:
        number = float(value)
    except ValueError:
        return value
    if 0 < number < 1:
        return f"{number:.0%} of the steps"
    return f"{value} steps"
