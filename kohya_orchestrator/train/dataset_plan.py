"""`plan` for a dataset config: several datasets, each with its own resolution, batch size and
buckets, and subsets with their own repeats, counted as sd-scripts counts them.

sd-scripts (library/config_util.py) builds one DreamBoothDataset per `[[datasets]]`: each
subset's images (the files in `image_dir`) times its num_repeats, regularisation subsets
(`is_reg`) re-weighted to the training images as steps.py does for reg folders, buckets per
dataset, and `ceil(images with repeats / batch size)` batches per bucket. The DatasetGroup's
batches are the sum over its datasets; steps per epoch, epochs, warmup and files follow as
for a folder layout. A value missing in a dataset comes from `[general]`, then from the
training config (train_batch_size, resolution, enable_bucket, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ConfigError
from kohya_orchestrator.sdscripts.buckets import BucketSelector, Reso, parse_resolution
from kohya_orchestrator.sdscripts.concepts import list_images
from kohya_orchestrator.sdscripts.epochs import planned_lora_stems
from kohya_orchestrator.sdscripts.lora_size import estimate_disk
from kohya_orchestrator.train.steps import (
    BucketRow,
    FolderCount,
    StepCount,
    _reg_repeats,  # the one home of DreamBoothDataset's reg re-weighting
    family_of,
)

# (dataset key, training key, default) for the values a dataset takes from the training config.
_FALLBACKS = (
    ("batch_size", "train_batch_size", 1),
    ("enable_bucket", "enable_bucket", False),
    ("bucket_no_upscale", "bucket_no_upscale", False),
    ("min_bucket_reso", "min_bucket_reso", 256),
    ("max_bucket_reso", "max_bucket_reso", 1024),
    ("bucket_reso_steps", "bucket_reso_steps", 64),
)


@dataclass
class DatasetCount:
    """One `[[datasets]]` table: its settings and the batches it adds per epoch."""

    index: int
    resolution: Reso
    batch_size: int
    enable_bucket: bool
    batches: int
    subsets: list[FolderCount] = field(default_factory=list)
    buckets: list[BucketRow] = field(default_factory=list)


@dataclass
class DatasetStepCount(StepCount):
    """A StepCount whose images come from a dataset config, with each dataset's numbers."""

    datasets: list[DatasetCount] = field(default_factory=list)
    dataset_config: str = ""


def _value(key: str, levels: list[Mapping[str, Any]], default: Any) -> Any:
    return next((level[key] for level in levels if key in level), default)


def _resolution(raw: Any, where: str) -> Reso:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return (raw, raw)
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, int) for v in raw):
        return (raw[0], raw[1])
    reso = parse_resolution(raw) if isinstance(raw, str) else None
    if reso is None:
        raise ConfigError(
            f"cannot plan: {where} has no resolution sd-scripts can read ({raw!r})",
            [],
            hint="set resolution = 1024 (or [width, height]) in [general] or the dataset",
        )
    return reso


def _dataset(
    i: int, dataset: Mapping[str, Any], general: Mapping[str, Any], training: Mapping[str, Any]
) -> tuple[DatasetCount, list[tuple[Path, int]]]:
    from kohya_orchestrator.dataset.imagesize import image_size

    levels = [dataset, general]
    where = f"[[datasets]] {i}"
    reso = _resolution(_value("resolution", levels, training.get("resolution")), where)
    got = {k: _value(k, levels, training.get(t, d)) for k, t, d in _FALLBACKS}
    selector = BucketSelector(
        reso,
        enable_bucket=bool(got["enable_bucket"]),
        no_upscale=bool(got["bucket_no_upscale"]),
        min_size=got["min_bucket_reso"],
        max_size=got["max_bucket_reso"],
        steps=got["bucket_reso_steps"],
    )
    default_repeats = _value("num_repeats", levels, training.get("dataset_repeats", 1))
    train: list[tuple[FolderCount, list[Path]]] = []
    reg: list[tuple[FolderCount, list[Path]]] = []
    for j, subset in enumerate(dataset.get("subsets", []), 1):
        if "metadata_file" in subset:
            raise ConfigError(
                f"cannot plan: {where}, subset {j} is a fine-tuning subset (metadata_file)",
                [],
                hint="plan counts DreamBooth-style subsets (image_dir, captions by file)",
            )
        folder = Path(str(subset.get("image_dir", ""))).expanduser()
        if not folder.is_dir():
            raise ConfigError(
                f"cannot plan: {where}, subset {j}: image_dir {folder} is not a folder",
                [],
                hint="check the path (a relative one is read from the current folder)",
            )
        images = list_images(folder)
        repeats = subset.get("num_repeats", default_repeats)
        is_reg = bool(subset.get("is_reg", False))
        count = FolderCount(str(folder), f"{i}/{folder.name}", repeats, len(images), is_reg)
        (reg if is_reg else train).append((count, images))
    weighted = [(img, c.repeats) for c, images in train for img in images]
    train_with = sum(c.with_repeats for c, _ in train)
    used_reg = [(c, images) for c, images in reg if images]
    for (_, images), counts in zip(
        used_reg, _reg_repeats([c for c, _ in used_reg], train_with), strict=True
    ):
        weighted += [(img, r) for img, r in zip(images, counts, strict=True) if r]
    table: dict[Reso, list[int]] = {}
    for img, repeats in weighted:
        row = table.setdefault(selector.select(*image_size(img)), [0, 0])
        row[0] += 1
        row[1] += repeats
    batch = got["batch_size"]
    buckets = [
        BucketRow(w, h, n, nr, math.ceil(nr / batch)) for (w, h), (n, nr) in sorted(table.items())
    ]
    subsets = [c for c, _ in train + reg]
    batches = sum(b.batches for b in buckets)
    found = DatasetCount(i, reso, batch, bool(got["enable_bucket"]), batches, subsets, buckets)
    return found, weighted


def count_dataset_config(
    doc: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
    *,
    num_processes: int = 1,
    script: str | None = None,
    source: str = "",
) -> DatasetStepCount:
    """The run sd-scripts does with this dataset config (and the training config's keys)."""
    training = dict(training or {})
    general = doc.get("general", {})
    datasets = [_dataset(i, d, general, training) for i, d in enumerate(doc.get("datasets", []), 1)]
    if not datasets:
        raise ConfigError("cannot plan: the dataset config has no [[datasets]]", [])
    accum = training.get("gradient_accumulation_steps", 1)
    batches = sum(d.batches for d, _ in datasets)
    steps_per_epoch = math.ceil(batches / num_processes / accum)
    notes = []
    if training.get("max_train_epochs") is not None:
        epochs = training["max_train_epochs"]
        total = epochs * steps_per_epoch
    else:
        total = training.get("max_train_steps", 1600)
        epochs = math.ceil(total / steps_per_epoch) if steps_per_epoch else 0
        notes.append(f"max_train_epochs is not set: {total} steps (max_train_steps)")
    warmup_arg = training.get("lr_warmup_steps", 0) or 0
    warmup = (
        int(warmup_arg * total * num_processes) if isinstance(warmup_arg, float) else warmup_arg
    )
    name = str(training.get("output_name") or "last")
    stems = planned_lora_stems(name, epochs, training.get("save_every_n_epochs"))
    family = family_of(training, script)
    rows = [b for d, _ in datasets for b in d.buckets]
    disk = estimate_disk(
        training, family, len(stems), [(b.width, b.height, b.images) for b in rows]
    )
    first = datasets[0][0]
    train_folders = [c for d, _ in datasets for c in d.subsets if not c.is_reg]
    warnings = [] if total else ["no images found: sd-scripts has nothing to train on"]
    return DatasetStepCount(
        family=family,
        resolution=first.resolution,
        enable_bucket=first.enable_bucket,
        folders=[c for d, _ in datasets for c in d.subsets],
        buckets=rows,
        batch_size=first.batch_size,
        gradient_accumulation_steps=accum,
        num_processes=num_processes,
        batches_per_epoch=batches,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        total_steps=total,
        warmup_steps=warmup,
        output_name=name,
        lora_stems=stems,
        lora_file_bytes=disk.lora_file,
        disk_bytes=disk.total,
        train_images=sum(c.images for c in train_folders),
        train_images_with_repeats=sum(c.with_repeats for c in train_folders),
        reg_images=sum(c.images for d, _ in datasets for c in d.subsets if c.is_reg),
        warnings=warnings,
        notes=notes,
        state_folders=disk.state_folders,
        state_bytes=disk.states,
        datasets=[d for d, _ in datasets],
        dataset_config=source,
    )


def count_config_file(
    path: Path, *, num_processes: int = 1, script: str | None = None
) -> StepCount:
    """`plan FILE`: a dataset config, a training config naming one, or a folder layout's
    training config (steps.count_file)."""
    import toml

    from kohya_orchestrator.fsutil import read_regular_text
    from kohya_orchestrator.lint.dataset import is_dataset_config
    from kohya_orchestrator.sdscripts.contract import flatten_like_sd_scripts
    from kohya_orchestrator.train.steps import count_file

    try:
        doc = toml.loads(read_regular_text(path))
    except (OSError, ValueError, TypeError, IndexError):
        return count_file(path, num_processes=num_processes, script=script)  # says what is wrong
    if is_dataset_config(doc):
        return count_dataset_config(
            doc, num_processes=num_processes, script=script, source=str(path)
        )
    training = flatten_like_sd_scripts(doc)
    raw = training.get("dataset_config")
    if not raw:
        return count_file(path, num_processes=num_processes, script=script)
    dataset_path = Path(str(raw)).expanduser()
    try:
        dataset_doc = toml.loads(read_regular_text(dataset_path))
    except (OSError, ValueError, TypeError, IndexError) as exc:
        raise ConfigError(
            f"cannot plan: dataset_config {dataset_path} cannot be read ({exc})",
            [],
            hint=f"kohya-orch validate {path}",
        ) from exc
    return count_dataset_config(
        dataset_doc, training, num_processes=num_processes, script=script, source=str(dataset_path)
    )
