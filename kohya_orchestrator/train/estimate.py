"""How long the full run will take: steps x seconds per step, from what this machine measured.

The seconds per step come from the run records in DEST/runs/ (each run records the last
rate tqdm printed): the newest training run first; its rate is scaled by pixels x batch
size when it trained another resolution or batch (a rough figure, and said so). Failing
that, the newest smoke run's rate, which at 64x64 and batch 1 is only a lower bound.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.buckets import parse_resolution
from kohya_orchestrator.train.progress import duration


def _records(layout: Layout) -> list[tuple[str, dict[str, Any]]]:
    """(stamp, record) of the runs that measured a step, newest first."""
    found = []
    if not layout.runs_dir.is_dir():
        return []
    for path in sorted(layout.runs_dir.glob("*.json"), reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rate = (data.get("extra") or {}).get("seconds_per_step") if isinstance(data, dict) else None
        if isinstance(rate, int | float) and rate > 0:
            found.append((path.stem, data))
    return found


def _work(values: Mapping[str, Any]) -> float | None:
    """Pixels x batch of one step, from flattened sd-scripts arguments."""
    reso = parse_resolution(values.get("resolution"))
    batch = values.get("train_batch_size") or 1
    if reso is None or not isinstance(batch, int):
        return None
    return float(reso[0] * reso[1] * batch)


def estimate_duration(
    layout: Layout, total_steps: int, values: Mapping[str, Any]
) -> dict[str, Any] | None:
    """{"seconds", "seconds_per_step", "source", "kind", "text"} or None (nothing measured);
    kind is "measured", "scaled" or "at least"."""
    records = _records(layout)
    train = [(s, r) for s, r in records if r.get("kind") == "train"]
    smoke = [(s, r) for s, r in records if r.get("kind") == "smoke"]
    if train:
        stamp, record = train[0]
        rate = float(record["extra"]["seconds_per_step"])
        config = _config_values(record)
        then, now = _work(config), _work(values)
        kind = "measured"
        if then and now and then != now:
            rate, kind = rate * now / then, "scaled"
    elif smoke:
        stamp, record = smoke[0]
        rate, kind = float(record["extra"]["seconds_per_step"]), "at least"
    else:
        return None
    seconds = rate * total_steps
    how = {
        "measured": f"{rate:.2f} s/step, measured by run {stamp}",
        "scaled": f"about {rate:.2f} s/step, scaled by pixels x batch from run {stamp}: rough",
        "at least": f"{rate:.2f} s/step of the smoke run {stamp} at 64x64, batch 1; a "
        "full-size step is slower",
    }[kind]
    prefix = "at least" if kind == "at least" else "about"
    return {
        "seconds": seconds,
        "seconds_per_step": rate,
        "source": stamp,
        "kind": kind,
        "text": f"{prefix} {duration(seconds)} ({how})",
    }


def _config_values(record: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened arguments of a recorded run (its config text)."""
    import toml

    from kohya_orchestrator.sdscripts.contract import flatten

    try:
        return dict(flatten(toml.loads(str((record.get("config") or {}).get("text", "")))).values)
    except (toml.TomlDecodeError, TypeError, ValueError):
        return {}
