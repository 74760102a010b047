"""The loss per epoch from TensorBoard event files, written here by the writer sd-scripts
uses (accelerate's TensorBoard tracker is torch's SummaryWriter), and the loss plot."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from results_factory import write_run, write_settings

from kohya_orchestrator.cli import cli
from kohya_orchestrator.results.loss import read_loss

pytest.importorskip("tensorboard", reason="the loss extra (tensorboard) is not installed")
HAS_TORCH = importlib.util.find_spec("torch") is not None


def write_events(folder: Path, epochs: dict[int, float], steps: dict[int, float], tag: str) -> None:
    """Event files as sd-scripts writes them: torch's SummaryWriter when torch is there (what
    accelerate uses), else TensorBoard's own writer of the same records."""
    if HAS_TORCH:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(folder))
        for step, value in steps.items():
            writer.add_scalar("loss/average", value, step)
            writer.add_scalar("loss/current", value + 0.01, step)
        for epoch, value in epochs.items():
            writer.add_scalar(tag, value, epoch)
        writer.close()
        return
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    for tag_name, points in (("loss/average", steps), (tag, epochs)):
        for step, value in points.items():
            summary = Summary(value=[Summary.Value(tag=tag_name, simple_value=value)])
            writer.add_event(Event(step=step, summary=summary, wall_time=1.0 + step))
    writer.close()


def _run(dest: Path) -> None:
    write_settings(dest, epochs=3)
    write_run(dest, epochs=3, batches=4)
    log = dest / "log" / "20251123221000" / "network_train"
    write_events(
        log,
        {1: 0.121, 2: 0.104, 3: 0.0982},
        {s: 0.13 - s * 0.0025 for s in range(1, 13)},
        "loss/epoch_average",
    )


def test_loss_per_epoch_and_step(tmp_path: Path) -> None:
    _run(tmp_path)
    curve = read_loss(tmp_path / "log")
    assert {e: round(v, 4) for e, v in curve.per_epoch.items()} == {1: 0.121, 2: 0.104, 3: 0.0982}
    assert [s for s, _ in curve.per_step] == list(range(1, 13))
    assert curve.runs == [tmp_path / "log" / "20251123221000" / "network_train"]


def test_an_older_sd_scripts_tag_and_a_resumed_run(tmp_path: Path) -> None:
    write_events(
        tmp_path / "log" / "20251101000000" / "network_train", {1: 0.2, 2: 0.19}, {}, "loss/epoch"
    )
    write_events(
        tmp_path / "log" / "20251102000000" / "network_train", {2: 0.18, 3: 0.17}, {}, "loss/epoch"
    )
    curve = read_loss(tmp_path / "log")
    assert {e: round(v, 2) for e, v in curve.per_epoch.items()} == {1: 0.2, 2: 0.18, 3: 0.17}


def test_results_shows_the_loss_column(runner: CliRunner, tmp_path: Path) -> None:
    _run(tmp_path)
    result = runner.invoke(cli, ["results", str(tmp_path)], catch_exceptions=False)
    lines = result.output.splitlines()
    assert lines[1] == "  epoch   steps      loss        size  written           file"
    assert [line.split()[:3] for line in lines[2:5]] == [
        ["1", "4", "0.1210"],
        ["2", "8", "0.1040"],
        ["3", "12", "0.0982"],
    ]
    doc = json.loads(runner.invoke(cli, ["results", str(tmp_path), "--json"]).output)
    assert [round(f["loss"], 4) for f in doc["files"]] == [0.121, 0.104, 0.0982]


def test_results_plot_writes_a_png_marking_the_saved_epochs(
    runner: CliRunner, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    from kohya_orchestrator.results.plot import plan_loss_plot
    from kohya_orchestrator.results.scan import scan_results

    _run(tmp_path)
    plot = plan_loss_plot(scan_results(tmp_path), read_loss(tmp_path / "log"))
    assert [(e, name) for e, _, name in plot.saved] == [
        (1, "yumoto_hakone-000001"),
        (2, "yumoto_hakone-000002"),
        (3, "yumoto_hakone"),
    ]
    assert plot.steps[3][0] == 1.0  # step 4 of 4 per epoch: the end of epoch 1
    result = runner.invoke(cli, ["results", str(tmp_path), "--plot"], catch_exceptions=False)
    png = tmp_path / "compare" / "loss.png"
    assert result.output.endswith(f"\nLoss curve: {png}\n")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (800, 450)


def test_plot_without_logs(runner: CliRunner, tmp_path: Path) -> None:
    write_settings(tmp_path, epochs=3)
    write_run(tmp_path, epochs=3)
    result = runner.invoke(cli, ["results", str(tmp_path), "--plot"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: No loss to plot: no TensorBoard logs in {tmp_path / 'log'} yet.\n"
        "  hint: sd-scripts writes them while it trains (logging_dir = DEST/log).\n"
    )
