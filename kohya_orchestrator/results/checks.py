"""The checks `kohya-orch results` runs on one run's LoRA files (pure: work on what was read).

Each returns Findings: a file without ss_* metadata, a renamed file, files of several
training sessions, a resumed run's undercounted ss_steps, missing epochs given
save_every_n_epochs, and settings (rank, alpha, epochs, learning rates, base model) that
the metadata contradicts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kohya_orchestrator.results.model import (
    LORA_SUFFIX,
    Finding,
    LoraFile,
    RunSettings,
    has_training_metadata,
    parse_int,
)
from kohya_orchestrator.sdscripts.epochs import epoch_of_stem, planned_lora_stems, saved_epochs


def check_files(
    files: list[LoraFile], name: str | None, settings: RunSettings | None, *, compare: bool = True
) -> list[Finding]:
    """Everything that looks wrong in one run's files (pure: works on what was read)."""
    out: list[Finding] = []
    if not files or name is None:
        return out
    for f in files:
        if not has_training_metadata(f.metadata):
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: no training metadata (ss_*): "
                    "not written by sd-scripts, or the metadata was stripped",
                )
            )
            continue
        meta_name = f.metadata.get("ss_output_name")
        if meta_name not in (None, "None", f.name):
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: its metadata says output name "
                    f"{meta_name!r}: the file was renamed or copied from another run",
                )
            )
        if f.epoch is not None and f.meta_epoch is not None and f.meta_epoch != f.epoch:
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: its metadata says epoch "
                    f"{f.meta_epoch}, its name says {f.epoch}",
                )
            )
    out.extend(_check_sessions(files))
    out.extend(_check_steps(files))
    out.extend(_check_epochs(files, name, settings))
    if settings is not None and compare:
        out.extend(compare_settings(files, settings))
    return out


def _check_sessions(files: list[LoraFile]) -> list[Finding]:
    sessions = {f.metadata["ss_session_id"] for f in files if "ss_session_id" in f.metadata}
    if len(sessions) <= 1:
        return []
    return [
        Finding(
            "note",
            f"the files come from {len(sessions)} training sessions "
            "(ss_session_id): a resumed run, or files of an earlier run left in model/",
        )
    ]


def steps_per_epoch(meta: dict[str, str]) -> int | None:
    """Optimizer steps per epoch on one process: ceil(batches / gradient accumulation)."""
    batches = parse_int(meta.get("ss_num_batches_per_epoch"))
    accum = parse_int(meta.get("ss_gradient_accumulation_steps")) or 1
    return math.ceil(batches / accum) if batches else None


def _check_steps(files: list[LoraFile]) -> list[Finding]:
    """ss_steps against epoch x steps per epoch; a resumed run's files are summed up once."""
    out: list[Finding] = []
    low: list[tuple[LoraFile, int, int]] = []
    for f in files:
        per_epoch = steps_per_epoch(f.metadata)
        epoch = f.shown_epoch
        if per_epoch is None or epoch is None or f.steps is None:
            continue
        expected = epoch * per_epoch
        if f.steps < expected:
            low.append((f, expected, per_epoch))
        elif f.steps > expected:
            out.append(
                Finding(
                    "warning",
                    f"{f.path.name}: {f.steps} steps recorded at epoch {epoch}, expected "
                    f"{expected} ({per_epoch} per epoch)",
                )
            )
    if low:
        first, expected, per_epoch = low[0]
        more = f" and {len(low) - 1} later file(s)" if len(low) > 1 else ""
        out.insert(
            0,
            Finding(
                "note",
                f"{first.path.name}{more}: fewer steps recorded than epochs x {per_epoch} "
                f"(epoch {first.shown_epoch}: {first.steps}, expected {expected}): a resumed "
                "run, sd-scripts restarts its step counter on --resume; the weights are fine, "
                "only ss_steps undercounts",
            ),
        )
    return out


def _check_epochs(files: list[LoraFile], name: str, settings: RunSettings | None) -> list[Finding]:
    out: list[Finding] = []
    numbered = [f.epoch for f in files if f.epoch is not None]
    final = next((f for f in files if f.is_final), None)
    # What the run was told (ss_num_epochs) wins: a settings mismatch is reported separately.
    recorded = [e for e in (parse_int(f.metadata.get("ss_num_epochs")) for f in files) if e]
    epochs = max(recorded, default=None) or (settings.epochs if settings else None)
    if epochs is None:
        return out
    save_every = settings.save_every if settings else None
    if save_every is None and numbered:
        # Without settings: the largest interval the saved epochs fit (5, 10 -> every 5).
        save_every = math.gcd(*numbered)
    expected = planned_lora_stems(name, epochs, save_every)
    present = {f.stem for f in files}
    missing = [s for s in expected if s not in present]
    missing_numbered = [s for s in missing if s != name]
    if missing_numbered and final is not None:
        out.append(
            Finding(
                "warning",
                f"missing epoch files: {', '.join(missing_numbered)} "
                "(deleted, or save_last_n_epochs removed them)",
            )
        )
    elif missing_numbered:
        last = max(numbered, default=0)
        gaps = [s for s in missing_numbered if (epoch_of_stem(name, s) or 0) < last]
        if gaps:
            out.append(Finding("warning", f"missing epoch files: {', '.join(gaps)}"))
    if final is None:
        done = max(numbered, default=0)
        out.append(
            Finding(
                "note",
                f"no final {name}{LORA_SUFFIX} yet: training is running or "
                f"stopped after epoch {done} of {epochs}",
            )
        )
    extra = [
        f.path.name
        for f in files
        if f.epoch is not None and f.epoch not in saved_epochs(epochs, save_every)[:-1]
    ]
    if extra:
        out.append(Finding("note", f"files the settings would not produce: {', '.join(extra)}"))
    return out


def compare_settings(files: list[LoraFile], settings: RunSettings) -> list[Finding]:
    """One warning per setting that a file's metadata contradicts."""
    checks: list[tuple[str, object, str, Any]] = [
        ("network_dim", settings.network_dim, "ss_network_dim", _num_equal),
        ("network_alpha", settings.network_alpha, "ss_network_alpha", _num_equal),
        ("epochs", settings.epochs, "ss_num_epochs", _num_equal),
        ("learning_rate", settings.learning_rate, "ss_learning_rate", _num_equal),
        ("unet_lr", _or(settings.unet_lr, settings.learning_rate), "ss_unet_lr", _num_equal),
        (
            "text_encoder_lr",
            _or(settings.text_encoder_lr, settings.learning_rate),
            "ss_text_encoder_lr",
            _num_equal,
        ),
        ("model", settings.model, "ss_sd_model_name", _model_equal),
    ]
    out: list[Finding] = []
    with_meta = [f for f in files if has_training_metadata(f.metadata)]
    for key, wanted, meta_key, equal in checks:
        if wanted is None:
            continue
        bad: dict[str, list[str]] = {}
        for f in with_meta:
            got = f.metadata.get(meta_key)
            if key in ("unet_lr", "text_encoder_lr") and got in (None, "None", "[]"):
                got = f.metadata.get("ss_learning_rate")  # unset means the base rate
            if got is None or got == "None" or equal(wanted, got):
                continue
            bad.setdefault(got, []).append(f.path.name)
        for got, names in bad.items():
            where = "all files" if len(names) == len(with_meta) else ", ".join(names)
            out.append(
                Finding(
                    "warning",
                    f"{key}: the settings say {_show(wanted)}, the files say {got} ({where})",
                )
            )
    return out


def _or(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _floats(text: str) -> list[float] | None:
    """ss_* numbers: "16", "8.0", "2.5e-05", or a list "[2.5e-05, 1e-05]" (text encoder LRs)."""
    from kohya_orchestrator.sdscripts.safetensors_header import loads_bounded

    try:
        value = loads_bounded(text)
    except ValueError:  # not JSON, or past the depth and number limits
        return None
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        return None
    return [float(v) for v in items]


def _num_equal(wanted: object, got: str) -> bool:
    values = _floats(got)
    if values is None or not isinstance(wanted, int | float):
        return False
    return all(math.isclose(v, float(wanted), rel_tol=1e-6) for v in values)


def _model_equal(wanted: object, got: str) -> bool:
    # sd-scripts stores the base model's file name when the path existed, else the text given.
    return Path(str(wanted)).name == Path(got).name
