"""The status line read from sd-scripts' output: epoch, step / total, s/step, time left."""

from __future__ import annotations

import pytest

from kohya_orchestrator.cli.train import Events
from kohya_orchestrator.train.progress import ProgressReader, duration

# What sd-scripts prints (train_network.py at 48d368fa: accelerator.print of the epoch, and
# tqdm's `steps` bar with avr_loss in its postfix), chunked where a pipe might cut it.
OUTPUT = [
    "running training / 学習開始\n  num epochs / epoch数: 15\n",
    "\nepoch 1/15\n",
    "\rsteps:   0%|          | 0/240 [00:00<?, ?it/s]",
    "\rsteps:   5%|▍         | 12/240 [00:18<05:47, 1.52s/it, avr_loss=0.0934]",
    "\rsteps:   5%|▌         | 13/240 [00:19<05:45, 1.52s/it, avr_lo",
    "ss=0.0912]\nsaving checkpoint: /x/model/hakone-000001.safetensors\n",
]


def test_the_reader_folds_progress_and_passes_other_lines() -> None:
    reader = ProgressReader()
    shown: list[str] = []
    for chunk in OUTPUT:
        lines, _ = reader.feed(chunk)
        shown += lines
    assert shown == [
        "running training / 学習開始",
        "  num epochs / epoch数: 15",
        "saving checkpoint: /x/model/hakone-000001.safetensors",
    ]
    assert reader.progress.line() == (
        "epoch 1/15  step 13/240  1.52 s/step  5m45s left  loss 0.0912"
    )


def test_it_per_second_and_durations() -> None:
    reader = ProgressReader()
    reader.feed("\rsteps:  50%|█████     | 1/2 [00:00<00:00, 2.50it/s, avr_loss=0.1]")
    assert reader.progress.line() == "step 1/2  0.40 s/step  0s left  loss 0.1"
    assert [duration(s) for s in (12, 250, 3900)] == ["12s", "4m10s", "1h05m"]


def test_on_a_terminal_one_status_line_replaces_the_bar(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    events = Events(status=True)
    for chunk in OUTPUT:
        events.output(chunk.encode())
    out = capsysbinary.readouterr().out.decode()
    assert out == (
        "running training / 学習開始\n  num epochs / epoch数: 15\n"
        "epoch 1/15"
        "\r\x1b[Kepoch 1/15  step 0/240"
        "\r\x1b[Kepoch 1/15  step 12/240  1.52 s/step  5m47s left  loss 0.0934"
        "\r\x1b[Kepoch 1/15  step 13/240  1.52 s/step  5m45s left  loss 0.0934"
        "\r\x1b[Ksaving checkpoint: /x/model/hakone-000001.safetensors\n"
        "epoch 1/15  step 13/240  1.52 s/step  5m45s left  loss 0.0912"
    )


def test_off_a_terminal_the_bytes_pass_through(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    events = Events(status=False)
    for chunk in OUTPUT:
        events.output(chunk.encode())
    assert capsysbinary.readouterr().out.decode() == "".join(OUTPUT)
