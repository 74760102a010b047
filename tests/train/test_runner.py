"""run_launch against the stand-in trainer: live output, log teeing, exit codes, Ctrl-C."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import toml
from fake_trainer import FAILURES
from testpaths import FAKE_TRAINER

from kohya_orchestrator import __version__
from kohya_orchestrator.train.diagnose import diagnose_log
from kohya_orchestrator.train.launch import LaunchSpec, build_launch
from kohya_orchestrator.train.runner import run_launch
from kohya_orchestrator.train.runrecord import (
    RunRecord,
    dataset_manifest,
    load_record,
    produced_loras,
    snapshot_loras,
)

FAKE = FAKE_TRAINER
HAS_ACCELERATE = importlib.util.find_spec("accelerate") is not None


def write_config(dest: Path, **values: object) -> Path:
    training: dict[str, object] = {"max_train_epochs": 3, "save_every_n_epochs": 1}
    training.update(network_dim=4, **values)
    doc = {
        "model": {"output_dir": str(dest / "model"), "output_name": "hakone"},
        "training": training,
    }
    path = dest / "config.toml"
    path.write_text(toml.dumps(doc))
    return path


def direct_spec(dest: Path, env: dict[str, str] | None = None, *args: str) -> LaunchSpec:
    """The stand-in started straight by Python (no accelerate)."""
    config = write_config(dest)
    return LaunchSpec(
        argv=[sys.executable, str(FAKE), "--config_file", str(config), *args],
        env=env or {},
        cwd=dest,
        log_path=dest / "log" / "train-1.log",
    )


def accelerate_spec(dest: Path, env: dict[str, str] | None = None) -> LaunchSpec:
    """The stand-in started through the real `python -m accelerate.commands.launch`."""
    config = write_config(dest)
    spec = build_launch(
        python=sys.executable,
        sd_scripts=FAKE.parent,
        script=FAKE.name,
        config_file=config,
        log_path=dest / "log" / "train-1.log",
        num_cpu_threads=1,
    )
    return dataclasses.replace(spec, env={**spec.env, **(env or {})}, cwd=dest)


SPECS = [pytest.param(direct_spec, id="direct")]
if HAS_ACCELERATE:
    SPECS.append(pytest.param(accelerate_spec, id="accelerate"))


@pytest.mark.parametrize("make_spec", SPECS)
def test_success_output_live_and_teed(tmp_path: Path, make_spec: object) -> None:
    spec = make_spec(tmp_path)  # type: ignore[operator]
    chunks: list[bytes] = []
    result = run_launch(spec, on_output=chunks.append)
    assert result.returncode == 0
    assert result.exit_code == 0
    shown = b"".join(chunks)
    assert spec.log_path.read_bytes() == shown
    assert b"\rsteps: 100%|" in shown  # tqdm's carriage-return progress is passed through
    assert result.tail_lines()[-1] == "model saved."
    names = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert names == ["hakone-000001.safetensors", "hakone-000002.safetensors", "hakone.safetensors"]


def test_output_arrives_while_the_child_runs(tmp_path: Path) -> None:
    spec = direct_spec(tmp_path, {"FAKE_TRAINER_MODE": "hang"})
    seen = threading.Event()
    shown = bytearray()

    def on_output(chunk: bytes) -> None:
        shown.extend(chunk)
        if b"ready\n" in shown and not seen.is_set():
            seen.set()
            os.kill(pid_of(tmp_path), signal.SIGINT)

    spec = LaunchSpec(
        spec.argv,
        {**spec.env, "FAKE_TRAINER_PIDFILE": str(tmp_path / "pid")},
        spec.cwd,
        spec.log_path,
    )
    result = run_launch(spec, on_output=on_output)
    assert seen.is_set()  # "ready" was shown before the child ended
    assert result.returncode == 130


def pid_of(dest: Path) -> int:
    return int((dest / "pid").read_text())


HOSTILE_ACCELERATE_CONFIG = """compute_environment: LOCAL_MACHINE
debug: true
distributed_type: MULTI_GPU
gpu_ids: 0,1
mixed_precision: fp16
num_machines: 1
num_processes: 2
use_cpu: false
"""


@pytest.mark.skipif(not HAS_ACCELERATE, reason="needs accelerate")
def test_users_accelerate_default_config_does_not_leak(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    (hf_home / "accelerate").mkdir(parents=True)
    (hf_home / "accelerate" / "default_config.yaml").write_text(HOSTILE_ACCELERATE_CONFIG)
    show = tmp_path / "show_env.py"
    show.write_text(
        "import os\n"
        "for k in ('ACCELERATE_DEBUG_MODE', 'WORLD_SIZE', 'CUDA_VISIBLE_DEVICES',"
        " 'ACCELERATE_MIXED_PRECISION'):\n"
        "    print(k, os.environ.get(k))\n"
    )
    spec = build_launch(
        python=sys.executable,
        sd_scripts=tmp_path,
        script=show.name,
        config_file=tmp_path / "config.toml",
        log_path=tmp_path / "log" / "train-1.log",
        num_cpu_threads=1,
    )
    env = {**os.environ, "HF_HOME": str(hf_home)}
    result = run_launch(spec, base_env=env)
    assert result.returncode == 0, result.tail
    assert result.tail_lines()[-4:] == [
        "ACCELERATE_DEBUG_MODE None",
        "WORLD_SIZE None",
        "CUDA_VISIBLE_DEVICES None",
        "ACCELERATE_MIXED_PRECISION no",
    ]
    assert spec.accelerate_config_path == tmp_path / "log" / "train-1.accelerate.yaml"
    assert spec.accelerate_config_path.read_text() == spec.accelerate_config_text
    # The fake trainer trains through accelerate with the same hostile default config.
    (tmp_path / "proj").mkdir()
    trained = run_launch(accelerate_spec(tmp_path / "proj"), base_env=env)
    assert trained.returncode == 0, trained.tail
    assert (tmp_path / "proj" / "model" / "hakone.safetensors").is_file()


def test_environment_laid_over_base(tmp_path: Path) -> None:
    spec = LaunchSpec(
        [
            sys.executable,
            "-c",
            "import os; e = os.environ; print(e['A'], e['B'], e['PYTHONUNBUFFERED'])",
        ],
        {"B": "mine"},
        tmp_path,
        tmp_path / "log" / "x.log",
    )
    result = run_launch(spec, base_env={"A": "inherited", "B": "theirs", "PATH": ""})
    assert result.tail_lines() == ["inherited mine 1"]


@pytest.mark.parametrize("make_spec", SPECS)
def test_exit_code_and_crash(tmp_path: Path, make_spec: object) -> None:
    spec = make_spec(tmp_path, {"FAKE_TRAINER_MODE": "crash"})  # type: ignore[operator]
    result = run_launch(spec)
    assert result.returncode == 1
    assert "RuntimeError: something nobody has seen before" in result.tail
    assert diagnose_log(result.log_path) is None


def test_exit_code_passed_through(tmp_path: Path) -> None:
    result = run_launch(direct_spec(tmp_path, {"FAKE_TRAINER_MODE": "exit:7"}))
    assert result.exit_code == 7


@pytest.mark.parametrize("key", sorted(FAILURES))
def test_known_failure_diagnosed_from_log(tmp_path: Path, key: str) -> None:
    result = run_launch(direct_spec(tmp_path, {"FAKE_TRAINER_MODE": f"fail:{key}"}))
    assert result.returncode == 1
    found = diagnose_log(result.log_path)
    assert found is not None
    assert found.key == key


def interrupt_when_ready(
    dest: Path, times: int, gap: float = 0.2, heard: bytes | None = None
) -> threading.Thread:
    """Send SIGINT to ourselves (as a terminal's Ctrl-C would) once the child said 'ready'.

    With `heard`, each Ctrl-C but the last waits until the child has printed `heard` once
    more: proof that we handled it and forwarded it. Two SIGINTs sent before a loaded
    machine runs our handler merge into one (a signal is pending or not), which made a
    test that needs two of them flaky."""

    def wait_for(text: bytes, count: int) -> None:
        log = dest / "log" / "train-1.log"
        for _ in range(600):
            if log.exists() and log.read_bytes().count(text) >= count:
                return
            time.sleep(0.05)

    def worker() -> None:
        wait_for(b"ready", 1)
        for i in range(times):
            os.kill(os.getpid(), signal.SIGINT)
            if heard is not None and i + 1 < times:
                wait_for(heard, i + 1)
            else:
                time.sleep(gap)
        kill_if_still_running(dest / "pid")

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    return thread


def kill_if_still_running(pidfile: Path, wait: float = 30.0) -> None:
    """A child that ignored the Ctrl-C would hang the test run: end it so the test fails."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not pidfile.exists() or process_gone(int(pidfile.read_text())):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


DRIVER = """import sys
from pathlib import Path
from kohya_orchestrator.train.launch import LaunchSpec
from kohya_orchestrator.train.runner import run_launch

dest = Path(sys.argv[1])
child = (
    "import os, time; open(os.environ['PIDFILE'], 'w').write(str(os.getpid())); "
    "print('ready', flush=True); time.sleep(600)"
)
spec = LaunchSpec([sys.executable, "-c", child], {"PIDFILE": str(dest / "pid")}, dest,
                  dest / "log" / "x.log")
print("returncode", run_launch(spec, grace_seconds=5).returncode, flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_to_us_stops_the_child(tmp_path: Path, sig: int) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.Popen(
        [sys.executable, str(driver), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    pidfile = tmp_path / "pid"
    try:
        for _ in range(600):
            log = tmp_path / "log" / "x.log"
            if log.exists() and b"ready" in log.read_bytes():
                break
            time.sleep(0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
        child = int(pidfile.read_text())
        assert process_gone(child)
        assert out == f"returncode {-signal.SIGTERM}\n"
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        if pidfile.exists():
            kill_if_still_running(pidfile, wait=0)


@pytest.mark.parametrize("make_spec", SPECS)
def test_ctrl_c_forwarded_and_child_stops(tmp_path: Path, make_spec: object) -> None:
    env = {"FAKE_TRAINER_MODE": "hang", "FAKE_TRAINER_PIDFILE": str(tmp_path / "pid")}
    spec = make_spec(tmp_path, env)  # type: ignore[operator]
    thread = interrupt_when_ready(tmp_path, times=1)
    result = run_launch(spec)
    thread.join()
    assert result.interrupts == 1
    assert "interrupted: saving and stopping" in result.tail
    assert result.returncode != 0
    assert process_gone(pid_of(tmp_path))


def test_second_ctrl_c_ends_a_stubborn_child(tmp_path: Path) -> None:
    env = {"FAKE_TRAINER_MODE": "stubborn", "FAKE_TRAINER_PIDFILE": str(tmp_path / "pid")}
    thread = interrupt_when_ready(tmp_path, times=2, heard=b"ignoring SIGINT")
    # The grace before SIGKILL is long, so only our SIGTERM (the second Ctrl-C) can end it.
    result = run_launch(direct_spec(tmp_path, env), grace_seconds=60)
    thread.join()
    assert "ignoring SIGINT" in result.tail  # the first Ctrl-C reached it, and was ignored
    assert result.interrupts == 2
    assert result.returncode == -signal.SIGTERM
    assert result.exit_code == 128 + signal.SIGTERM
    assert process_gone(pid_of(tmp_path))


def test_ctrl_c_reaches_the_child_when_we_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A CI job or `cmd &` starts us with SIGINT ignored; the child must not inherit that."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        env = {"FAKE_TRAINER_MODE": "hang", "FAKE_TRAINER_PIDFILE": str(tmp_path / "pid")}
        thread = interrupt_when_ready(tmp_path, times=1)
        result = run_launch(direct_spec(tmp_path, env), grace_seconds=5)
        thread.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert result.interrupts == 1
    assert "interrupted: saving and stopping" in result.tail
    assert result.returncode == 130
    assert process_gone(pid_of(tmp_path))


def test_signal_handlers_restored(tmp_path: Path) -> None:
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = [signal.getsignal(sig) for sig in sigs]
    run_launch(direct_spec(tmp_path))
    assert [signal.getsignal(sig) for sig in sigs] == before


def test_resume_continues_from_state(tmp_path: Path) -> None:
    config = write_config(tmp_path, save_state=True)
    first = LaunchSpec(
        [sys.executable, str(FAKE), "--config_file", str(config)],
        {},
        tmp_path,
        tmp_path / "log" / "a.log",
    )
    assert run_launch(first).returncode == 0
    states = sorted(p.name for p in (tmp_path / "model").glob("*-state"))
    assert states == ["hakone-000001-state", "hakone-000002-state", "hakone-state"]
    second = LaunchSpec(
        [*first.argv, "--resume", str(tmp_path / "model" / "hakone-000002-state")],
        {},
        tmp_path,
        tmp_path / "log" / "b.log",
    )
    result = run_launch(second)
    assert "epoch 2" in result.tail  # "resume training from state: ... epoch 2"
    assert "epoch 3/3" in result.tail
    assert "epoch 1/3" not in result.tail


def test_run_record_written_at_start_and_updated_at_end(tmp_path: Path) -> None:
    concept = tmp_path / "img" / "7_hakone"
    concept.mkdir(parents=True)
    (concept / "hakone_1.png").write_bytes(b"png-bytes")
    (concept / "hakone_1.txt").write_text("hakone, glasses\n")
    (concept / "hakone_2.jpg").write_bytes(b"jpg")
    spec = direct_spec(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "old.safetensors").write_bytes(b"x")
    before = snapshot_loras(model)
    record = RunRecord(
        path=tmp_path / "runs" / "20260101-120000.json",
        kind="train",
        argv=spec.argv,
        env={"PYTORCH_ENABLE_MPS_FALLBACK": "1"},
        cwd=str(spec.cwd),
        log=str(spec.log_path),
        config_text="[a]\nb = 1\n",
        settings={"network_dim": 4, "model": Path("/m.safetensors")},
        probe={"torch": "2.13.0", "device": "mps"},
        sd_scripts_commit="48d368fa",
        dataset=dataset_manifest(tmp_path / "img", ".txt"),
        started=1767268800.0,
    )
    record.write()
    first = load_record(record.path)
    assert (first["version"], first["kohya_orch"], first["kind"]) == (1, __version__, "train")
    assert first["ended"] is None
    assert first["exit_code"] is None
    assert first["started"] == "2026-01-01T12:00:00+00:00"
    assert first["config"] == {
        "text": "[a]\nb = 1\n",
        "sha256": hashlib.sha256(b"[a]\nb = 1\n").hexdigest(),
    }
    assert first["dataset"] == [
        {
            "file": "7_hakone/hakone_1.png",
            "size": 9,
            "caption_sha256": hashlib.sha256(b"hakone, glasses\n").hexdigest(),
        },
        {"file": "7_hakone/hakone_2.jpg", "size": 3, "caption_sha256": None},
    ]
    assert first["settings"] == {"network_dim": 4, "model": "/m.safetensors"}
    result = run_launch(spec)
    record.finish(
        exit_code=result.exit_code,
        ended=1767268860.0,
        loras=produced_loras(model, before),
        peak_rss_bytes=result.peak_rss_bytes,
    )
    final = load_record(record.path)
    assert final["ended"] == "2026-01-01T12:01:00+00:00"
    assert final["exit_code"] == 0
    assert final["loras"] == [
        "hakone-000001.safetensors",
        "hakone-000002.safetensors",
        "hakone.safetensors",
    ]
    assert final["extra"]["peak_rss_bytes"] > 0
    assert final["env"] == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    assert final["probe"] == {"torch": "2.13.0", "device": "mps"}
    assert final["sd_scripts_commit"] == "48d368fa"
    assert list(record.path.parent.iterdir()) == [record.path]  # no temp file left behind


def test_unflushed_prints_arrive_live(tmp_path: Path) -> None:
    # print() to a pipe is block-buffered unless PYTHONUNBUFFERED is set by the runner.
    code = "import os, time; print('pid', os.getpid()); time.sleep(30)"
    spec = LaunchSpec([sys.executable, "-c", code], {}, tmp_path, tmp_path / "log" / "x.log")

    seen = bytearray()

    def on_output(chunk: bytes) -> None:
        seen.extend(chunk)  # unbuffered print() may arrive in pieces: wait for the line
        if seen.endswith(b"\n") and seen.startswith(b"pid "):
            os.kill(int(seen.split()[1]), signal.SIGTERM)

    result = run_launch(spec, on_output=on_output)
    assert result.returncode == -signal.SIGTERM
