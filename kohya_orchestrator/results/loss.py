"""The loss of a run, from the TensorBoard event files sd-scripts writes into DEST/log.

sd-scripts logs through accelerate's TensorBoard tracker (torch's SummaryWriter) into
`<logging_dir>/<timestamp>/network_train/events.out.tfevents.*`: the epoch's average loss
under `loss/epoch_average` (`loss/epoch` before 2025) at step = the epoch number, and the
running average `loss/average` at each global step. The files are read with TensorBoard's
own event reader (the optional extra `kohya-orchestrator[loss]`); nothing is parsed here.
A resumed run writes a new folder: later runs win for the same epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EPOCH_TAGS = ("loss/epoch_average", "loss/epoch")
STEP_TAGS = ("loss/average",)
EXTRA = "pip install 'kohya-orchestrator[loss]' (TensorBoard's event reader)"


class LossUnavailable(Exception):
    """The event files are there, but TensorBoard's reader is not installed."""


@dataclass
class LossCurve:
    """Loss per epoch and per step, merged over the runs in DEST/log."""

    per_epoch: dict[int, float] = field(default_factory=dict)
    per_step: list[tuple[int, float]] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.per_epoch and not self.per_step


def event_folders(log_dir: Path) -> list[Path]:
    """The folders holding event files under `log_dir`, oldest first (by their files' names,
    which start with the time they were written)."""
    if not log_dir.is_dir():
        return []
    folders = {p.parent for p in log_dir.rglob("events.out.tfevents.*") if p.is_file()}
    return sorted(folders, key=lambda f: min(p.name for p in f.glob("events.out.tfevents.*")))


def read_loss(log_dir: Path) -> LossCurve:
    """The loss curves in `log_dir` (empty when there are no event files yet);
    LossUnavailable when there are files but no reader."""
    folders = event_folders(log_dir)
    curve = LossCurve(runs=folders)
    if not folders:
        return curve
    try:
        from tensorboard.backend.event_processing.event_accumulator import (
            SCALARS,
            EventAccumulator,
        )
    except ImportError:
        raise LossUnavailable(EXTRA) from None
    steps: dict[int, float] = {}
    for folder in folders:
        accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
        accumulator.Reload()
        tags = set(accumulator.Tags().get("scalars", []))
        for tag in EPOCH_TAGS:
            if tag in tags:
                curve.per_epoch |= {e.step: float(e.value) for e in accumulator.Scalars(tag)}
                break
        for tag in STEP_TAGS:
            if tag in tags:
                steps |= {e.step: float(e.value) for e in accumulator.Scalars(tag)}
    curve.per_epoch = dict(sorted(curve.per_epoch.items()))
    curve.per_step = sorted(steps.items())
    return curve
