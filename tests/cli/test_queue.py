"""The training queue (`train DEST1 DEST2 ...`, `queue FILE`) with the stand-in trainer: every
preflight first, a failing middle run, Ctrl-C and the question, the summary table."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from projectfactory import make_project
from testpaths import FAKE_TRAINER

from kohya_orchestrator.cli import cli
from kohya_orchestrator.train.probe import Probe

needs_accelerate = pytest.mark.skipif(
    importlib.util.find_spec("accelerate") is None, reason="accelerate is not installed"
)
SMALL = ("epochs=2", "network_dim=4")


@pytest.fixture(autouse=True)
def no_real_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []

    def probe(python: str) -> Probe:
        calls.append(python)
        return Probe(python=python, torch="2.13.0", accelerate="1.15.0", device="cpu")

    monkeypatch.setattr("kohya_orchestrator.cli.train._probe", probe)
    monkeypatch.setattr("kohya_orchestrator.cli.train._timestamp", lambda: "20260101-120000")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("KOHYA_SD_SCRIPTS", raising=False)


@pytest.fixture
def sd_scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "sd-scripts"
    folder.mkdir()
    shutil.copy(FAKE_TRAINER, folder / "sdxl_train_network.py")
    return folder


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    return [make_project(tmp_path / "p", name, overrides=SMALL) for name in ("aa", "bb", "cc")]


def _queue(runner: CliRunner, dests: list[Path], sd: Path, *more: str, input: str = "") -> object:
    args = ["train", *map(str, dests), "--sd-scripts", str(sd), "--python", sys.executable]
    return runner.invoke(cli, [*args, *more], input=input, catch_exceptions=False)


def test_every_preflight_runs_before_the_first_training(
    runner: CliRunner, three: list[Path], sd_scripts: Path
) -> None:
    (three[1] / "model" / "bb.safetensors").write_bytes(b"x")  # an earlier run of bb
    (three[2] / "img" / "7_cc" / "cc_1.txt").unlink()
    result = runner.invoke(
        cli, ["train", *map(str, three), "--sd-scripts", str(sd_scripts), "--python", "py"]
    )
    assert result.exit_code == 1
    err = result.stderr
    assert "Error: training cannot start" not in err
    assert (
        "Error: the queue cannot start: 2 of 3 project(s) have problems; nothing was run.\n"
        f"  - {three[1]}: training cannot start: the preflight found 1 problem(s).\n"
        f"      {three[1] / 'model' / 'bb.safetensors'} exists (a finished run of bb): training "
        "would overwrite it; use --resume to continue, --force to overwrite, or change "
        "output_name.\n"
        f"  - {three[2]}: training cannot start: the preflight found 1 problem(s).\n"
        f"      1 of 2 image(s) in {three[2] / 'img'} have no .txt caption: cc_1.png\n"
        "  hint: Fix them (or take those projects out of the queue) and start it again.\n"
    ) in err
    assert not list(three[0].glob("runs/*.json"))  # aa was fine, but nothing ran


@needs_accelerate
def test_a_failing_middle_run_moves_on_and_the_table_says_so(
    runner: CliRunner, three: list[Path], sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODES", json.dumps({"bb": "exit:3"}))
    result = _queue(runner, three, sd_scripts)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    start = lines.index("queue: 3 run(s), 2 finished")
    table = [line.rstrip() for line in lines[start + 1 : start + 5]]
    width = len(str(three[0]))
    assert table[0] == f"   #  {'DEST':<{width}}  result    exit           time  LoRA files"
    assert table[1].startswith(f"   1  {three[0]}  finished  0   ")
    assert table[1].endswith("aa-000001.safetensors, aa.safetensors")
    assert table[2].startswith(f"   2  {three[1]}  failed    1   ")  # accelerate says 1
    assert table[2].endswith("  -")
    assert table[3].startswith(f"   3  {three[2]}  finished  0   ")
    for dest in three:  # each run keeps its own record
        [record] = dest.glob("runs/*.json")
        assert json.loads(record.read_text())["exit_code"] == (1 if dest == three[1] else 0)


@needs_accelerate
def test_stop_on_failure(
    runner: CliRunner, three: list[Path], sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODES", json.dumps({"bb": "exit:3"}))
    result = _queue(runner, three, sd_scripts, "--stop-on-failure")
    assert result.exit_code == 1
    assert "queue: 3 run(s), 1 finished" in result.stdout
    assert f"   3  {three[2]}  not run   -" in result.stdout
    assert not list(three[2].glob("runs/*.json"))


def _interrupt_when_ready(dest: Path) -> threading.Thread:
    def interrupt() -> None:
        for _ in range(600):
            logs = list((dest / "log").glob("train-*.log"))
            if logs and b"ready" in logs[0].read_bytes():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    return thread


@needs_accelerate
@pytest.mark.parametrize(("answer", "third"), [("y\n", "finished"), ("n\n", "not run")])
def test_ctrl_c_stops_the_run_and_asks_whether_to_go_on(
    runner: CliRunner,
    three: list[Path],
    sd_scripts: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    third: str,
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODES", json.dumps({"bb": "hang"}))
    thread = _interrupt_when_ready(three[1])
    result = _queue(runner, three, sd_scripts, input=answer)
    thread.join()
    assert result.exit_code == 130
    assert f"stopped by Ctrl-C. Go on with the next run ({three[2]})? [y/N]: " in result.stderr
    assert f"   2  {three[1]}  stopped   130 (Ctrl-C)" in result.stdout
    assert f"   3  {three[2]}  {third:<9}" in result.stdout
    [record] = three[1].glob("runs/*.json")
    assert json.loads(record.read_text())["extra"]["interrupted"] == 1


def test_queue_file(runner: CliRunner, three: list[Path], sd_scripts: Path) -> None:
    listing = three[0].parent / "tonight.txt"
    listing.write_text(f"# tonight\n{three[0].name}\n\n{three[2]}  # the last one\n")
    result = runner.invoke(
        cli,
        ["queue", str(listing), "--dry-run", "--sd-scripts", str(sd_scripts), "--python", "py"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    heads = [line for line in result.stdout.splitlines() if line.startswith("# /")]
    assert heads == [f"# {three[0]}", f"# {three[2]}"]
    again = runner.invoke(cli, ["train", str(three[0]), str(three[0]), "--dry-run"])
    assert again.exit_code == 1
    assert again.stderr.endswith(
        f"Error: {three[0]} is in the queue twice.\n  hint: List each DEST once.\n"
    )
