"""`plan` (and `train --smoke`) estimate the full run's duration from the runs measured here;
`plan` shows the state folders kept for `train --resume` and their disk."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from projectfactory import make_project

from kohya_orchestrator.cli import cli
from kohya_orchestrator.sdscripts.lora_size import state_folders


def _record(dest: Path, stamp: str, kind: str, rate: float, config: str = "") -> None:
    runs = dest / "runs"
    runs.mkdir(exist_ok=True)
    doc = {"kind": kind, "extra": {"seconds_per_step": rate}, "config": {"text": config}}
    (runs / f"{stamp}.json").write_text(json.dumps(doc))


def _plan_lines(runner: CliRunner, dest: Path) -> list[str]:
    """The plan's lines from `disk needed:` to `time:`."""
    result = runner.invoke(cli, ["plan", str(dest)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("disk needed:"))
    last = next(i for i, ln in enumerate(lines) if ln.startswith("time:"))
    return lines[first : last + 1]


def test_state_folders_kept() -> None:
    args = {"save_state": True, "save_last_n_epochs_state": 1}
    assert state_folders(args, 15) == 2  # the last saved epoch's and the final one
    assert state_folders({**args, "save_last_n_epochs_state": 0}, 15) == 15
    assert state_folders({"save_state": False}, 15) == 0


def test_plan_without_a_measured_run(runner: CliRunner, tmp_path: Path) -> None:
    lines = _plan_lines(runner, make_project(tmp_path))
    assert lines[-3].startswith("disk needed:       about ")
    assert lines[-2].startswith("state folders:     2 kept at the end (for train --resume), about ")
    assert lines[-1] == "time:              unknown until a run is measured (train DEST --smoke)"


def test_plan_from_the_last_training_run(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path, overrides=("epochs=10",))
    plan = runner.invoke(cli, ["plan", str(dest)], catch_exceptions=False).stdout
    total = int(next(ln for ln in plan.splitlines() if ln.startswith("total steps")).split()[-1])
    _record(dest, "20260101-120000-smoke", "smoke", 0.5)
    assert _plan_lines(runner, dest)[-1] == (
        f"time:              at least {round(0.5 * total)}s (0.50 s/step of the smoke run "
        "20260101-120000-smoke at 64x64, batch 1; a full-size step is slower)"
    )
    _record(dest, "20260102-120000", "train", 3.0, 'resolution = "512,512"\ntrain_batch_size = 4\n')
    assert _plan_lines(runner, dest)[-1] == (
        f"time:              about {total * 3 // 60}m{total * 3 % 60:02d}s (3.00 s/step, measured "
        "by run 20260102-120000)"
    )
    _record(dest, "20260103-120000", "train", 3.0, 'resolution = "512,512"\ntrain_batch_size = 2\n')
    assert _plan_lines(runner, dest)[-1] == (
        f"time:              about {total * 6 // 60}m{total * 6 % 60:02d}s (about 6.00 s/step, "
        "scaled by pixels x batch from run 20260103-120000: rough)"
    )
