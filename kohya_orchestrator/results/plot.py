"""`results --plot`: the loss curve of a run as DEST/compare/loss.png, the saved epochs marked.

Drawn with matplotlib (the optional extra `kohya-orchestrator[plot]`), without pyplot (no
window, no global state): the running average per step as a thin line, the average of
each epoch as dots, and a marked dot with the file's name for each epoch that has a LoRA
file, so the curve says which files are worth comparing in Forge.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from kohya_orchestrator.errors import ResultsError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.results.loss import LossCurve, read_loss
from kohya_orchestrator.results.model import Results

PLOT_NAME = "loss.png"
EXTRA = "pip install 'kohya-orchestrator[plot]' (matplotlib)"


@dataclass
class LossPlot:
    """What the plot shows: per-step points (x in epochs), per-epoch points, saved epochs."""

    title: str
    steps: list[tuple[float, float]] = field(default_factory=list)
    epochs: list[tuple[int, float]] = field(default_factory=list)
    saved: list[tuple[int, float, str]] = field(default_factory=list)  # epoch, loss, file stem


def plan_loss_plot(results: Results, curve: LossCurve) -> LossPlot:
    """The plot's data (pure)."""
    from kohya_orchestrator.results.checks import steps_per_epoch

    if curve.empty:
        raise ResultsError(
            f"No loss to plot: no TensorBoard logs in {results.dest / 'log'} yet.",
            "sd-scripts writes them while it trains (logging_dir = DEST/log).",
        )
    per_epoch = next((n for f in results.files if (n := steps_per_epoch(f.metadata))), None)
    if per_epoch is None and curve.per_step and curve.per_epoch:
        per_epoch = max(1, round(curve.per_step[-1][0] / max(curve.per_epoch)))
    plot = LossPlot(f"{results.name or 'LoRA'}: loss")
    if per_epoch:
        plot.steps = [(step / per_epoch, value) for step, value in curve.per_step]
    plot.epochs = sorted(curve.per_epoch.items())
    for f in results.files:
        epoch = f.shown_epoch
        if epoch is not None and epoch in curve.per_epoch:
            plot.saved.append((epoch, curve.per_epoch[epoch], f.stem))
    return plot


def render_loss_plot(plot: LossPlot) -> bytes:
    """The PNG of the plot."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ResultsError("results --plot needs matplotlib.", EXTRA) from None
    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    if plot.steps:
        xs, ys = zip(*plot.steps, strict=True)
        axes.plot(xs, ys, color="#9ab", linewidth=1, label="running average (per step)")
    if plot.epochs:
        xs, ys = zip(*plot.epochs, strict=True)
        axes.plot(xs, ys, "o-", color="#246", markersize=4, label="epoch average")
    if plot.saved:
        xs, ys, _names = zip(*plot.saved, strict=True)
        axes.plot(xs, ys, "*", color="#d62", markersize=12, label="saved LoRA file")
        for x, y, name in plot.saved:
            axes.annotate(
                name,
                (x, y),
                textcoords="offset points",
                xytext=(0, 9),
                ha="center",
                fontsize=7,
                rotation=30,
            )
    last = max([e for e, _ in plot.epochs] + [x for x, _ in plot.steps], default=1)
    axes.set_xlim(0, last + 1)  # room for the last file's name
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(plot.title)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_loss_plot(results: Results, *, force: bool = True) -> Path:
    """Draw DEST/compare/loss.png from DEST/log (replaced each time: it is ours)."""
    from kohya_orchestrator.fsutil import atomic_write_bytes
    from kohya_orchestrator.results.loss import LossUnavailable

    layout = Layout(results.dest)
    try:
        curve = read_loss(layout.log_dir)
    except LossUnavailable as exc:
        raise ResultsError("results --plot needs TensorBoard's event reader.", str(exc)) from None
    png = render_loss_plot(plan_loss_plot(results, curve))
    target = layout.compare_dir / PLOT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, png)
    return target
