"""Which run wrote each LoRA file, and with which settings: the run records in DEST/runs/.

A run given `--set network_dim=4` wrote files of rank 4 while the settings file still says
16; its record has the settings it was given. Each file is checked against the settings of
the newest training run whose record lists it, and the settings of that run that differ
from today's settings file are told apart from a real mismatch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from kohya_orchestrator.layout import Layout
from kohya_orchestrator.results.model import RunSettings


@dataclass(frozen=True)
class RecordedRun:
    """One training run's record: its name (the timestamp), the files it wrote, its settings."""

    stamp: str
    loras: tuple[str, ...]
    settings: RunSettings


def run_settings_of(values: Mapping[str, Any]) -> RunSettings:
    """The settings `results` checks, from resolved settings values (a record's or today's)."""
    model = values.get("model")
    return RunSettings(
        name=str(values.get("name")),
        epochs=values.get("epochs"),
        save_every=values.get("save_every_n_epochs"),
        network_dim=values.get("network_dim"),
        network_alpha=values.get("network_alpha"),
        learning_rate=values.get("learning_rate"),
        unet_lr=values.get("unet_lr"),
        text_encoder_lr=values.get("text_encoder_lr"),
        model=str(model) if model else None,
        trigger=values.get("trigger"),
        clip_skip=values.get("clip_skip"),
    )


def recorded_runs(layout: Layout) -> list[RecordedRun]:
    """The training runs (not smoke runs) that recorded their files, oldest first; records
    that cannot be read are skipped (a run killed while writing one)."""
    runs = []
    folder = layout.runs_dir
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("kind") != "train":
            continue
        settings = data.get("settings")
        if not isinstance(settings, dict) or not data.get("loras"):
            continue
        runs.append(RecordedRun(path.stem, tuple(data["loras"]), run_settings_of(settings)))
    return runs


def writer_of(runs: list[RecordedRun]) -> dict[str, RecordedRun]:
    """File name -> the newest run that wrote it."""
    found: dict[str, RecordedRun] = {}
    for run in runs:
        for name in run.loras:
            found[name] = run
    return found


_COMPARED = (
    "network_dim",
    "network_alpha",
    "epochs",
    "learning_rate",
    "unet_lr",
    "text_encoder_lr",
    "save_every",
)


def differences(run: RunSettings, today: RunSettings) -> list[tuple[str, Any, Any]]:
    """(setting, the run's value, today's value) where they differ."""
    names = {f.name for f in fields(RunSettings)}
    return [
        (key, getattr(run, key), getattr(today, key))
        for key in _COMPARED
        if key in names and getattr(run, key) != getattr(today, key)
    ]


def differs_note(files: list[str], run: RecordedRun, today: RunSettings) -> str | None:
    """`a.safetensors: written by run 2026... with network_dim 4, ...; the settings file
    now says network_dim 16, ...`, or None when the run had today's settings."""
    diff = differences(run.settings, today)
    if not diff:
        return None
    then = ", ".join(f"{_label(k)} {_value(v)}" for k, v, _ in diff)
    now = ", ".join(f"{_label(k)} {_value(v)}" for k, _, v in diff)
    return (
        f"{', '.join(files)}: written by run {run.stamp} with {then} (checked against those); "
        f"the settings file now says {now}"
    )


def _label(key: str) -> str:
    return "save_every_n_epochs" if key == "save_every" else key


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
