"""`kohya-orch train` and `doctor` end to end, with the stand-in trainer as sd-scripts' script.

The stand-in is copied into a folder as `sdxl_train_network.py` and started through the real
`python -m accelerate.commands.launch` (where accelerate is installed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image
from testpaths import FAKE_TRAINER

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.settings_file import write_initial_settings
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.safetensors_header import read_header, write_header_only
from kohya_orchestrator.train.probe import Probe

FAKE = FAKE_TRAINER
needs_accelerate = pytest.mark.skipif(
    importlib.util.find_spec("accelerate") is None, reason="accelerate is not installed"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    concept = dest / "img" / "7_hakone"
    concept.mkdir(parents=True)
    for i in (1, 2):
        Image.new("RGB", (96, 64), (i * 60, 20, 20)).save(concept / f"hakone_{i}.png")
        (concept / f"hakone_{i}.txt").write_text("hakone, glasses\n")
    model = tmp_path / "base.safetensors"
    key = "conditioner.embedders.0.transformer.text_model.embeddings.position_ids"
    write_header_only(model, {key: {"dtype": "F16", "shape": [1, 77]}}, {})
    with model.open("ab") as handle:  # the tensor's data, so the file is whole
        handle.write(bytes(2 * 77))
    write_initial_settings(
        Layout(dest),
        name="hakone",
        trigger="hakone",
        images=concept,
        model=model,
        overrides=["epochs=3", "network_dim=4", "network_alpha=2"],
    )
    return dest


@pytest.fixture
def sd_scripts(tmp_path: Path) -> Path:
    folder = tmp_path / "sd-scripts"
    folder.mkdir()
    shutil.copy(FAKE, folder / "sdxl_train_network.py")
    return folder


@pytest.fixture(autouse=True)
def no_real_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The probe reports this Python (the real probe is tested in test_preflight.py)."""

    def probe(python: str) -> Probe:
        return Probe(python=python, torch="2.13.0", accelerate="1.15.0", device="cpu")

    monkeypatch.setattr("kohya_orchestrator.cli.train._probe", probe)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KOHYA_SD_SCRIPTS", raising=False)


def train(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, ["train", *args])


STAMP = "20260101-120000"


@pytest.fixture
def fixed_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kohya_orchestrator.cli.train._timestamp", lambda: STAMP)


@pytest.mark.usefixtures("fixed_stamp")
def test_dry_run_prints_the_command(runner: CliRunner, project: Path, sd_scripts: Path) -> None:
    generated = project / "log" / f"train-{STAMP}.accelerate.yaml"
    result = runner.invoke(
        cli,
        ["train", str(project), "--dry-run", "--sd-scripts", str(sd_scripts), "--python", "/p/py"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"# working folder: {sd_scripts}",
        f"# config: {project / 'config.toml'} (not written: --dry-run)",
        f"# accelerate config: {generated} (not written: --dry-run)",
        f"/p/py -m accelerate.commands.launch --config_file {generated} "
        "--num_processes 1 --num_machines 1 "
        "--mixed_precision no --dynamo_backend no --num_cpu_threads_per_process "
        f"{_threads(1)} {sd_scripts / 'sdxl_train_network.py'} --config_file "
        f"{project / 'config.toml'}",
    ]
    assert not (project / "config.toml").exists()
    assert not (project / "runs").exists()
    assert not generated.exists()


def _threads(processes: int) -> int:
    import os

    from kohya_orchestrator.train.launch import default_cpu_threads

    return default_cpu_threads(os.cpu_count(), processes)


@pytest.mark.usefixtures("fixed_stamp")
def test_dry_run_multi_gpu_and_extra_args(
    runner: CliRunner, project: Path, sd_scripts: Path
) -> None:
    generated = project / "log" / f"train-{STAMP}.accelerate.yaml"
    args = [str(project), "--dry-run", "--sd-scripts", str(sd_scripts), "--python", "/p/py"]
    result = runner.invoke(
        cli,
        ["train", *args, "--gpus", "2", "--set", "profile=cuda", "--", "--seed", "9"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == (
        f"/p/py -m accelerate.commands.launch --config_file {generated} "
        "--multi_gpu --num_processes 2 --num_machines 1 "
        f"--mixed_precision bf16 --dynamo_backend no --num_cpu_threads_per_process {_threads(2)} "
        f"{sd_scripts / 'sdxl_train_network.py'} --config_file {project / 'config.toml'} "
        "--seed 9"
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gpu-ids", "0,x"], "--gpu-ids '0,x' is not a list of GPU numbers."),
        (["--gpus", "3", "--gpu-ids", "0,1"], "--gpus 3 but --gpu-ids 0,1 names 2 GPU(s)."),
    ],
)
def test_bad_gpu_flags_rejected_before_the_probe(
    runner: CliRunner,
    project: Path,
    sd_scripts: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    message: str,
) -> None:
    def no_probe(python: str) -> Probe:
        raise AssertionError("the probe must not run for a bad --gpus/--gpu-ids")

    monkeypatch.setattr("kohya_orchestrator.cli.train._probe", no_probe)
    result = train(runner, str(project), "--sd-scripts", str(sd_scripts), *flags)
    assert result.exit_code == 1
    hint = (
        "Give comma-separated numbers, e.g. --gpu-ids 0,1."
        if "0,x" in flags
        else "Give as many GPU ids as --gpus, or only --gpu-ids."
    )
    assert result.stderr == f"Error: {message}\n  hint: {hint}\n"
    assert not (project / "config.toml").exists()


def test_smoke_and_resume_rejected(runner: CliRunner, project: Path) -> None:
    result = train(runner, str(project), "--smoke", "--resume")
    assert result.exit_code == 2
    assert "Error: Invalid value for --smoke: --smoke cannot be combined with --resume." in (
        result.stderr
    )


def test_preflight_failure_stops_before_running(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    (project / "img" / "7_hakone" / "hakone_2.txt").unlink()
    result = train(runner, str(project), "--sd-scripts", str(tmp_path / "none"))
    assert result.exit_code == 1
    concept = project / "img"
    assert result.stderr.endswith(
        "Error: training cannot start: the preflight found 2 problem(s).\n"
        f"  - sd-scripts not found: {tmp_path / 'none'} (from --sd-scripts) does not exist.\n"
        f"  - 1 of 2 image(s) in {concept} have no .txt caption: hakone_2.png\n"
        "  hint: Fix these and run again; `kohya-orch doctor DEST` shows the whole checklist.\n"
    )
    assert not (project / "runs").exists()


@needs_accelerate
def test_train_for_real_through_accelerate(
    runner: CliRunner, project: Path, sd_scripts: Path
) -> None:
    result = runner.invoke(
        cli,
        ["train", str(project), "--sd-scripts", str(sd_scripts), "--python", sys.executable],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "\rsteps: 100%|" in result.stdout
    model = project / "model"
    names = sorted(p.name for p in model.glob("*.safetensors"))
    assert names == ["hakone-000001.safetensors", "hakone-000002.safetensors", "hakone.safetensors"]
    meta = read_header(model / "hakone.safetensors").metadata
    assert (meta["ss_network_dim"], meta["ss_network_alpha"], meta["ss_num_epochs"]) == (
        "4",
        "2.0",
        "3",
    )
    [log] = list((project / "log").glob("train-*.log"))
    assert "model saved." in log.read_text()
    [record_path] = list((project / "runs").glob("*.json"))
    record = json.loads(record_path.read_text())
    config_text = (project / "config.toml").read_text()
    assert record["kind"] == "train"
    assert record["argv"][:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert record["argv"][-3:] == [
        str(sd_scripts / "sdxl_train_network.py"),
        "--config_file",
        str(project / "config.toml"),
    ]
    assert record["env"] == {}
    assert record["config"] == {
        "text": config_text,
        "sha256": hashlib.sha256(config_text.encode()).hexdigest(),
    }
    assert record["settings"]["network_dim"] == 4
    assert record["probe"]["torch"] == "2.13.0"
    caption_hash = hashlib.sha256(b"hakone, glasses\n").hexdigest()
    assert [(d["file"], d["caption_sha256"]) for d in record["dataset"]] == [
        ("7_hakone/hakone_1.png", caption_hash),
        ("7_hakone/hakone_2.png", caption_hash),
    ]
    assert record["exit_code"] == 0
    assert record["loras"] == names
    assert record["started"] <= record["ended"]
    assert f"run record: {record_path}" in result.stdout

    again = train(runner, str(project), "--sd-scripts", str(sd_scripts))
    assert again.exit_code == 1
    assert "training would overwrite it; use --resume to continue" in again.stderr


@needs_accelerate
def test_known_failure_shows_tail_cause_and_exit_code(
    runner: CliRunner, project: Path, sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TRAINER_MODE", "fail:bitsandbytes")
    result = train(
        runner, str(project), "--sd-scripts", str(sd_scripts), "--python", sys.executable
    )
    assert result.exit_code == 1
    err = result.stderr
    assert "training failed with exit code 1. Last lines:" in err
    assert (
        "  | ImportError: No bitsandbytes / bitsandbytesがインストールされていないようです" in err
    )
    assert (
        "cause: the 8-bit optimizer needs bitsandbytes, which works only on NVIDIA GPUs. "
        'Fix: use optimizer = "AdamW" (not AdamW8bit) in kohya-orch.toml.'
    ) in err
    [record_path] = list((project / "runs").glob("*.json"))
    assert json.loads(record_path.read_text())["exit_code"] == 1


def test_trainer_exit_code_is_ours(
    runner: CliRunner, project: Path, sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without accelerate in between: --python is a tiny launcher that runs the script itself.
    launcher = project.parent / "launcher.py"
    launcher.write_text(
        "import runpy, sys\n"
        "i = next(n for n, a in enumerate(sys.argv) if a.endswith('.py') and n > 0)\n"
        "sys.argv = sys.argv[i:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    wrapper = project.parent / "py"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {launcher} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAKE_TRAINER_MODE", "exit:3")
    result = train(runner, str(project), "--sd-scripts", str(sd_scripts), "--python", str(wrapper))
    assert result.exit_code == 3
    assert "training failed with exit code 3." in result.stderr


@pytest.mark.usefixtures("fixed_stamp")
def test_two_runs_in_one_second_keep_two_records_and_two_logs(
    runner: CliRunner, project: Path, sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs within one second wrote one runs/<ts>.json and one log: the second took the
    first one's names. Now the second gets `<ts>-2`."""
    launcher = project.parent / "launcher.py"
    launcher.write_text(
        "import runpy, sys\n"
        "i = next(n for n, a in enumerate(sys.argv) if a.endswith('.py') and n > 0)\n"
        "sys.argv = sys.argv[i:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    wrapper = project.parent / "py"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {launcher} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAKE_TRAINER_MODE", "exit:0")
    for _ in range(2):
        result = train(
            runner, str(project), "--sd-scripts", str(sd_scripts), "--python", str(wrapper)
        )
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project / "runs").iterdir()) == [
        f"{STAMP}-2.json",
        f"{STAMP}.json",
    ]
    logs = sorted(p.name for p in (project / "log").glob("train-*.log"))
    assert logs == [f"train-{STAMP}-2.log", f"train-{STAMP}.log"]
    second = json.loads((project / "runs" / f"{STAMP}-2.json").read_text())
    assert second["log"] == str(project / "log" / f"train-{STAMP}-2.log")
    assert not (project / ".kohya-orch.lock").exists()


def test_resume_without_state(runner: CliRunner, project: Path, sd_scripts: Path) -> None:
    result = train(runner, str(project), "--resume", "--dry-run", "--sd-scripts", str(sd_scripts))
    assert result.exit_code == 1
    assert result.stderr.endswith(
        f"Error: --resume: no saved state (a '*-state' folder) in {project / 'model'}.\n"
        "  hint: Saved states exist only when the run had save_state on: set 'save_state = "
        "true' in kohya-orch.toml (or --set save_state=true) and train again.\n"
    )


@needs_accelerate
def test_resume_continues_from_newest_state(
    runner: CliRunner, project: Path, sd_scripts: Path
) -> None:
    base = [str(project), "--sd-scripts", str(sd_scripts), "--python", sys.executable]
    first = train(runner, *base, "--set", "save_state=true")
    assert first.exit_code == 0, first.output
    state = project / "model" / "hakone-state"
    assert state.is_dir()
    second = train(runner, *base, "--set", "save_state=true", "--resume")
    assert second.exit_code == 0, second.output
    assert f"resume training from state: {state} epoch 3" in second.stdout
    records = sorted((project / "runs").glob("*.json"))
    assert len(records) >= 1
    assert json.loads(records[-1].read_text())["argv"][-2:] == ["--resume", str(state)]


@needs_accelerate
def test_state_of_the_last_epoch_is_kept_by_default(
    runner: CliRunner, project: Path, sd_scripts: Path
) -> None:
    # Ctrl-C loses at most one epoch: save_state is on, and only the last epoch's state
    # (and the final one) is kept, as sd-scripts' save_last_n_epochs_state = 1 does.
    base = [str(project), "--sd-scripts", str(sd_scripts), "--python", sys.executable]
    result = train(runner, *base)
    assert result.exit_code == 0, result.output
    states = sorted(p.name for p in (project / "model").glob("*-state"))
    assert states == ["hakone-000002-state", "hakone-state"]
    config = (project / "config.toml").read_text()
    assert "save_state = true" in config
    assert "save_last_n_epochs_state = 1" in config


@needs_accelerate
def test_smoke_run(runner: CliRunner, project: Path, sd_scripts: Path) -> None:
    result = runner.invoke(
        cli,
        [
            "train",
            str(project),
            "--smoke",
            "--sd-scripts",
            str(sd_scripts),
            "--python",
            sys.executable,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    smoke = project / "smoke"
    images = sorted((smoke / "img" / "1_hakone").glob("*.png"))
    assert [p.name for p in images] == ["hakone_1.png", "hakone_2.png"]
    with Image.open(images[0]) as image:
        assert image.size == (64, 64)
    import toml

    config = toml.load(smoke / "config.toml")
    assert (config["resolution"], config["max_train_epochs"], config["enable_bucket"]) == (
        "64,64",
        1,
        False,
    )
    assert "sample_every_n_epochs" not in config
    assert "  time per step: 0.40 s" in result.stdout
    assert "  LoRA written: smoke.safetensors" in result.stdout
    notes = [ln for ln in result.stderr.splitlines() if ln.startswith(("note: ", "warning: "))]
    assert notes and len(notes) == len(set(notes))  # each note once per command
    [full] = [ln for ln in result.stdout.splitlines() if ln.startswith("  full run (")]
    assert full.startswith("  full run (12 steps): at least 5s (0.40 s/step of the smoke run ")
    assert full.endswith("-smoke at 64x64, batch 1; a full-size step is slower)")
    assert not (project / "model" / "hakone.safetensors").exists()
    assert not (project / "config.toml").exists()
    [record] = list((project / "runs").glob("*-smoke.json"))
    assert json.loads(record.read_text())["extra"]["seconds_per_step"] == pytest.approx(0.4)


def test_doctor_checklist(runner: CliRunner, project: Path, sd_scripts: Path) -> None:
    result = runner.invoke(
        cli, ["doctor", str(project), "--sd-scripts", str(sd_scripts)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("platform: ")
    assert lines[1] == "device:   cpu"
    assert [line.split(":")[0] for line in lines[2:]] == [
        "[ok  ] sd-scripts",
        "[ok  ] python",
        "[ok  ] torch",
        "[ok  ] accelerate",
        "[warn] device",
        "[ok  ] model",
        "[ok  ] captions",
        "[ok  ] dataset",
        "[ok  ] output",
        "[ok  ] disk",
        "[ok  ] facts",
        "[warn] facts",  # the stand-in sd-scripts has no .git: its commit is unknown
    ]


def test_doctor_without_dest_fails_without_sd_scripts(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["doctor", "--sd-scripts", str(tmp_path / "x"), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["checks"][0] == {
        "name": "sd-scripts",
        "status": "fail",
        "detail": f"sd-scripts not found: {tmp_path / 'x'} (from --sd-scripts) does not exist.",
    }


def test_seconds_per_step_from_tqdm_output() -> None:
    from kohya_orchestrator.train.smoke import seconds_per_step

    slow = "steps:  50%|█████     | 1/2 [00:35<00:35, 35.12s/it, avr_loss=0.1]\r"
    fast = "steps: 100%|██████████| 2/2 [00:01<00:00, 1.25it/s, avr_loss=0.1]\n"
    assert seconds_per_step("caching latents: 100%|██| 2/2 [00:01<00:00, 9.0it/s]\n") is None
    assert seconds_per_step(slow) == pytest.approx(35.12)
    assert seconds_per_step(slow + fast) == pytest.approx(0.8)


def test_plan_smoke_without_images(tmp_path: Path) -> None:
    from kohya_orchestrator.errors import DatasetError
    from kohya_orchestrator.train.smoke import plan_smoke

    (tmp_path / "img").mkdir()
    with pytest.raises(DatasetError) as info:
        plan_smoke(Layout.at(tmp_path), {"train_data_dir": str(tmp_path / "img")})
    assert info.value.render() == (
        f"--smoke: no training images in {tmp_path / 'img'}.\n"
        "  hint: Run `kohya-orch prepare` first, or check train_data_dir in the config."
    )


@needs_accelerate
def test_ctrl_c_stops_the_trainer(
    runner: CliRunner, project: Path, sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import threading
    import time

    monkeypatch.setenv("FAKE_TRAINER_MODE", "hang")
    monkeypatch.setenv("FAKE_TRAINER_PIDFILE", str(project / "pid"))

    def interrupt() -> None:
        # accelerate and torch start slowly on a loaded machine: wait up to 2 minutes for "ready".
        for _ in range(2400):
            logs = list((project / "log").glob("train-*.log"))
            if logs and b"ready" in logs[0].read_bytes():
                os.kill(os.getpid(), signal.SIGINT)
                break
            time.sleep(0.05)
        # A trainer that ignored the Ctrl-C would hang the test run: end it, the test fails.
        for _ in range(300):
            if (project / "pid").exists():
                try:
                    os.kill(int((project / "pid").read_text()), 0)
                except ProcessLookupError:
                    return
            time.sleep(0.1)
        os.kill(int((project / "pid").read_text()), signal.SIGKILL)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    result = train(
        runner, str(project), "--sd-scripts", str(sd_scripts), "--python", sys.executable
    )
    thread.join()
    assert result.exit_code != 0
    assert "interrupted: saving and stopping" in result.stdout
    assert "stopped by Ctrl-C (exit code" in result.stderr
    pid = int((project / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    [record] = list((project / "runs").glob("*.json"))
    assert json.loads(record.read_text())["extra"]["interrupted"] == 1


def test_dry_run_shows_the_command_and_then_the_problems(runner: CliRunner, project: Path) -> None:
    missing = project.parent / "nowhere"
    result = train(runner, str(project), "--dry-run", "--sd-scripts", str(missing))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1].endswith(
        f"{missing / 'sdxl_train_network.py'} --config_file {project / 'config.toml'}"
    )
    assert result.stderr.endswith(
        "Error: training cannot start: the preflight found 1 problem(s).\n"
        f"  - sd-scripts not found: {missing} (from --sd-scripts) does not exist.\n"
        "  hint: Fix these and run again; `kohya-orch doctor DEST` shows the whole checklist.\n"
    )


def test_lint_errors_stop_train_and_name_the_setting(
    runner: CliRunner, project: Path, sd_scripts: Path
) -> None:
    result = train(
        runner,
        str(project),
        "--dry-run",
        "--sd-scripts",
        str(sd_scripts),
        "--set",
        "optimizer=Nope",
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: The rendered config has errors; nothing was run:\n")
    assert "(setting 'optimizer', from --set)" in result.stderr


def test_the_layout_is_built_once_per_command(
    runner: CliRunner, project: Path, sd_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: one `train` built Layout(dest) five times (render, preflight, smoke, run).
    built: list[Path] = []
    original = Layout.__init__

    def counting(self: Layout, dest: Path) -> None:
        built.append(dest)
        original(self, dest)

    monkeypatch.setattr(Layout, "__init__", counting)
    result = train(runner, str(project), "--dry-run", "--sd-scripts", str(sd_scripts))
    assert result.exit_code == 0, result.output
    assert built == [project]


def test_dry_run_without_sd_scripts_names_no_relative_folder(
    runner: CliRunner, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: from /tmp it printed "# working folder: /tmp/vendor/sd-scripts" and
    # "tried .../site-packages/vendor/sd-scripts".
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = train(runner, str(project), "--dry-run")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == "# working folder: <sd-scripts not found>"
    assert str(elsewhere) not in result.output
    assert (
        f"  - sd-scripts not found (tried {tmp_path / 'home' / 'kohya_ss' / 'sd-scripts'}); "
        "give --sd-scripts DIR or set KOHYA_SD_SCRIPTS.\n"
    ) in result.stderr
