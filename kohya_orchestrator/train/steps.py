"""The step counter: the numbers sd-scripts will use for a run (buckets, steps, files).

Reads image sizes from headers only. The arithmetic follows sd-scripts at the pinned commit:
concept folders as config_util reads them, regularisation re-weighting as DreamBoothDataset
does, buckets as BucketManager, batches per bucket as BaseDataset.make_buckets, and
steps per epoch as train_network.py: ceil(batches / processes / gradient accumulation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ConfigError, DatasetError
from kohya_orchestrator.fsutil import read_regular_text
from kohya_orchestrator.sdscripts.buckets import BucketSelector, Reso, parse_resolution
from kohya_orchestrator.sdscripts.concepts import ConceptFolder, scan_concepts
from kohya_orchestrator.sdscripts.epochs import EPOCH_FILE, planned_lora_stems, saved_epochs
from kohya_orchestrator.sdscripts.lora_size import estimate_disk
from kohya_orchestrator.sdscripts.trainers import DEFAULT_FAMILY, for_script

MANY_STEPS = 10_000
FEW_STEPS = 100


@dataclass
class FolderCount:
    """One concept folder: how sd-scripts counts it."""

    path: str
    name: str
    repeats: int
    images: int
    is_reg: bool = False
    skipped: str = ""

    @property
    def with_repeats(self) -> int:
        return self.images * self.repeats


@dataclass
class BucketRow:
    """One bucket: its resolution, images without and with repeats, and batches per epoch."""

    width: int
    height: int
    images: int
    with_repeats: int
    batches: int


@dataclass
class StepCount:
    """Everything `kohya-orch plan` shows."""

    family: str
    resolution: Reso
    enable_bucket: bool
    folders: list[FolderCount]
    buckets: list[BucketRow]
    batch_size: int
    gradient_accumulation_steps: int
    num_processes: int
    batches_per_epoch: int
    steps_per_epoch: int
    epochs: int
    total_steps: int
    warmup_steps: int
    output_name: str
    lora_stems: list[str]
    lora_file_bytes: int
    disk_bytes: int
    train_images: int
    train_images_with_repeats: int
    reg_images: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    state_folders: int = 0
    state_bytes: int = 0
    # The full run's expected duration (train/estimate.py), for a project folder.
    duration: dict[str, Any] | None = None
    # Which sd-scripts facts the rendered config was checked against (a project's plan).
    facts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resolution"] = list(self.resolution)
        return data


def _int(args: Mapping[str, Any], key: str, default: int) -> int:
    value = args.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"cannot plan: '{key}' = {value!r} is not an integer",
            [],
            hint=f"fix {key} (kohya-orch validate shows every problem)",
        )
    return value


def _folder(args: Mapping[str, Any], key: str, base_dir: Path | None) -> Path | None:
    raw = args.get(key)
    if raw is None or raw == "":
        return None
    path = Path(str(raw)).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_dir():
        raise DatasetError(
            f"cannot plan: {key} {path} is not a folder",
            hint="check the path (a relative one is read from the current folder)",
        )
    return path


def family_of(args: Mapping[str, Any], script: str | None) -> str:
    """The model family the LoRA size is computed for (SDXL when the script is not known)."""
    if script is None:
        return DEFAULT_FAMILY
    return for_script(script, v2=bool(args.get("v2"))).family


def _reg_repeats(reg: list[FolderCount], train_with_repeats: int) -> list[list[int]]:
    """Per reg image, the repeats DreamBoothDataset gives it (0 = not used at all)."""
    infos = [(fi, i) for fi, f in enumerate(reg) for i in range(f.images)]
    reps = [[0] * f.images for f in reg]
    n = 0
    first = True
    while infos and n < train_with_repeats:
        for fi, i in infos:
            if first:
                reps[fi][i] = reg[fi].repeats
                n += reg[fi].repeats
            else:
                reps[fi][i] += 1
                n += 1
            if n >= train_with_repeats:
                break
        first = False
    return reps


def _folder_plans(base: Path, is_reg: bool) -> tuple[list[FolderCount], list[ConceptFolder]]:
    concepts = scan_concepts(base)
    plans = [
        FolderCount(str(c.path), c.path.name, c.repeats, len(c.images), is_reg, c.skipped)
        for c in concepts
    ]
    return plans, concepts


def count_steps(
    args: Mapping[str, Any],
    *,
    num_processes: int = 1,
    base_dir: Path | None = None,
    script: str | None = None,
) -> StepCount:
    """The run sd-scripts will do with these flattened arguments (image headers read only)."""
    from kohya_orchestrator.dataset.imagecheck import misread_warnings
    from kohya_orchestrator.dataset.imagesize import BOMB_PIXELS, image_size, is_bomb
    from kohya_orchestrator.train.images import upscaled_warning

    if args.get("dataset_config"):
        raise ConfigError(
            "cannot plan: the config uses dataset_config, and plan reads train_data_dir",
            [],
            hint="plan a config with train_data_dir (the kohya folder layout)",
        )
    if num_processes < 1:
        raise ConfigError(f"cannot plan for {num_processes} processes", [], hint="use --gpus 1")
    train_dir = _folder(args, "train_data_dir", base_dir)
    if train_dir is None:
        raise ConfigError("cannot plan: train_data_dir is not set", [], hint="set train_data_dir")
    reso = parse_resolution(args.get("resolution"))
    if reso is None:
        raise ConfigError(
            f'cannot plan: resolution {args.get("resolution")!r} is not a string like "512,512"',
            [],
            hint='set resolution = "512,512"',
        )
    enable = bool(args.get("enable_bucket"))
    selector = BucketSelector(
        reso,
        enable_bucket=enable,
        no_upscale=bool(args.get("bucket_no_upscale")),
        min_size=_int(args, "min_bucket_reso", 256),
        max_size=_int(args, "max_bucket_reso", 1024),
        steps=_int(args, "bucket_reso_steps", 64),
    )
    batch = _int(args, "train_batch_size", 1)
    accum = _int(args, "gradient_accumulation_steps", 1)
    if batch < 1 or accum < 1:
        raise ConfigError(
            "cannot plan: train_batch_size and gradient_accumulation_steps must be 1 or more",
            [],
        )

    folders, concepts = _folder_plans(train_dir, False)
    used = [(f, c) for f, c in zip(folders, concepts, strict=True) if not f.skipped and f.images]
    train_with = sum(f.with_repeats for f, _ in used)
    weighted: list[tuple[Path, int]] = [(img, f.repeats) for f, c in used for img in c.images]
    reg_dir = _folder(args, "reg_data_dir", base_dir)
    reg_total = 0
    if reg_dir is not None:
        reg_folders, reg_concepts = _folder_plans(reg_dir, True)
        reg_used = [
            (f, c)
            for f, c in zip(reg_folders, reg_concepts, strict=True)
            if not f.skipped and f.images
        ]
        reps = _reg_repeats([f for f, _ in reg_used], train_with)
        for (_, c), counts in zip(reg_used, reps, strict=True):
            weighted.extend((img, r) for img, r in zip(c.images, counts, strict=True) if r)
        reg_total = sum(f.images for f, _ in reg_used)
        folders += reg_folders

    warnings: list[str] = []
    notes: list[str] = []
    small: list[tuple[Path, Reso, Reso]] = []
    off_size = 0
    table: dict[Reso, list[int]] = {}
    bombs: list[str] = []
    for img, repeats in weighted:
        w, h = image_size(img)
        if is_bomb((w, h)) and img.name not in bombs:
            bombs.append(img.name)
        bucket = selector.select(w, h)
        row = table.setdefault(bucket, [0, 0])
        row[0] += 1
        row[1] += repeats
        if enable and (w < bucket[0] or h < bucket[1]) and all(s[0] != img for s in small):
            small.append((img, (w, h), bucket))
        if not enable and (w, h) != reso:
            off_size += 1
    buckets = [
        BucketRow(w, h, n, nr, math.ceil(nr / batch)) for (w, h), (n, nr) in sorted(table.items())
    ]
    batches = sum(b.batches for b in buckets)
    steps_per_epoch = math.ceil(batches / num_processes / accum)

    epochs_arg = args.get("max_train_epochs")
    if epochs_arg is not None:
        epochs = _int(args, "max_train_epochs", 1)
        total = epochs * steps_per_epoch
    else:
        total = _int(args, "max_train_steps", 1600)
        epochs = math.ceil(total / steps_per_epoch) if steps_per_epoch else 0
        notes.append(f"max_train_epochs is not set: {total} steps (max_train_steps)")
    warmup_arg = args.get("lr_warmup_steps", 0) or 0
    if isinstance(warmup_arg, float):
        warmup = int(warmup_arg * total * num_processes)
    else:
        warmup = int(warmup_arg)

    name = args.get("output_name")
    every = args.get("save_every_n_epochs")
    if name:
        stems = planned_lora_stems(str(name), epochs, every)
    else:
        # sd-scripts' defaults without output_name: "epoch-000001" ... and "last".
        stems = [
            EPOCH_FILE.format("epoch", e) if e < epochs else "last"
            for e in saved_epochs(epochs, every)
        ]
        name = "last"
    family = family_of(args, script)
    _int(args, "network_dim", 4)
    disk = estimate_disk(args, family, len(stems), [(b.width, b.height, b.images) for b in buckets])

    if total > MANY_STEPS:
        warnings.append(f"total steps {total} is more than {MANY_STEPS:,}: a very long run")
    if 0 < total < FEW_STEPS:
        warnings.append(f"total steps {total} is fewer than {FEW_STEPS}: the LoRA may learn little")
    if total == 0:
        warnings.append("no images found: sd-scripts has nothing to train on")
    warnings += upscaled_warning(small) + misread_warnings(
        dict.fromkeys(img for img, _ in weighted),
        hint="`kohya-orch prepare` makes corrected copies",
    )
    if off_size:
        warnings.append(
            f"buckets are off and {off_size} image{'s are' if off_size != 1 else ' is'} not "
            f"{reso[0]}x{reso[1]}: sd-scripts fails after loading the model"
        )
    if bombs:
        shown = ", ".join(bombs[:5]) + (f" (and {len(bombs) - 5} more)" if len(bombs) > 5 else "")
        warnings.append(
            f"{len(bombs)} image{'s claim' if len(bombs) != 1 else ' claims'} more than "
            f"{BOMB_PIXELS:,} pixels, which Pillow refuses to open: sd-scripts stops when it "
            f"loads {'them' if len(bombs) != 1 else 'it'}; remove or re-save {shown}"
        )
    # The scheduler steps once per process per optimizer step (sd-scripts' get_scheduler_fix
    # multiplies the steps by the process count), so warmup is in scheduler steps.
    if total and warmup >= total * num_processes:
        scheduler_total = total * num_processes
        per_process = f" ({total} x {num_processes} processes)" if num_processes > 1 else ""
        warnings.append(
            f"warmup steps {warmup} >= total steps {scheduler_total}{per_process}: the learning "
            "rate never reaches its value"
        )
    if isinstance(args.get("validation_split"), float) and args["validation_split"] > 0:
        warnings.append("validation_split > 0: the counts here ignore the validation split")

    return StepCount(
        family=family,
        resolution=reso,
        enable_bucket=enable,
        folders=folders,
        buckets=buckets,
        batch_size=batch,
        gradient_accumulation_steps=accum,
        num_processes=num_processes,
        batches_per_epoch=batches,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        total_steps=total,
        warmup_steps=warmup,
        output_name=str(name),
        lora_stems=stems,
        lora_file_bytes=disk.lora_file,
        disk_bytes=disk.total,
        train_images=sum(f.images for f, _ in used),
        train_images_with_repeats=train_with,
        reg_images=reg_total,
        warnings=warnings,
        notes=notes,
        state_folders=disk.state_folders,
        state_bytes=disk.states,
    )


def count_file(path: Path, *, num_processes: int = 1, script: str | None = None) -> StepCount:
    """Plan from an sd-scripts training TOML (read with `toml`, flattened as sd-scripts does)."""
    import toml

    from kohya_orchestrator.lint.linter import header_hints
    from kohya_orchestrator.sdscripts.contract import flatten_like_sd_scripts

    try:
        text = read_regular_text(path)
        doc = toml.loads(text)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", []) from exc
    except toml.TomlDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML (line {exc.lineno}, column {exc.colno}): {exc.msg}",
            [],
            hint=f"kohya-orch validate {path}",
        ) from exc
    return count_steps(
        flatten_like_sd_scripts(doc),
        num_processes=num_processes,
        base_dir=None,  # relative paths from the current folder, as sd-scripts reads them
        script=script or header_hints(text)[0],
    )


def count_project(
    dest: Path,
    overrides: Sequence[str] = (),
    num_processes: int = 1,
    *,
    sd_scripts: Path | None = None,
) -> StepCount:
    """Count the run of a project folder from its settings (kohya-orch.toml + overrides).

    A folder with a config.toml but no kohya-orch.toml (a GUI project) is counted from the
    config.toml.
    """
    from kohya_orchestrator.layout import Layout
    from kohya_orchestrator.project.render import build_config, refuse_errors

    layout = Layout.at(dest)
    if not layout.settings_file.exists() and layout.config_file.is_file() and not overrides:
        return count_file(layout.config_file, num_processes=num_processes)

    rendered = build_config(layout, overrides, sd_scripts=sd_scripts)
    # `config` refuses to write this config, so a count of it would describe a run that
    # cannot start.
    refuse_errors(rendered, "there is nothing to plan")
    count = count_steps(
        rendered.flat,
        num_processes=num_processes,
        base_dir=layout.dest,
        script=rendered.script,
    )
    count.facts = rendered.report.facts
    count.warnings[:0] = [w.render() for w in rendered.report.warnings if not w.key]
    from kohya_orchestrator.train.estimate import estimate_duration

    count.duration = estimate_duration(layout, count.total_steps, rendered.flat)
    return count
