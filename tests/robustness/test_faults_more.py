"""Kill trials for the other writers: `export` (copy and link) into a Forge folder, `config`,
`templates cp`, `caption --tags`, `grid`, and `train`'s run record.

Each trial makes a fresh copy of what the command works on, starts the real command
(`python -m kohya_orchestrator`), SIGKILLs it after a delay drawn within one uninterrupted
run's measured duration (seeded; odd seeds after the planning where the command has a
--dry-run to time it), then checks that every file it writes is either as it was or as an
uninterrupted run leaves it (never partial), that nothing else appeared but its temps and
its lock file, runs the command again, and checks that the result equals an uninterrupted
run with no temp and no lock file left anywhere.

`make faults` runs 30 trials per command; `make test` runs one each.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import results_factory as rf
from faultkit import (
    CLI,
    TRIGGER,
    checkpoint,
    fake_sd_python,
    kill_after,
    run,
    sha,
    timed,
)
from faultrun import (
    Checker,
    Pristine,
    draw,
    halfway,
    make_pristine,
    no_temps_left,
    record,
    summary,  # noqa: F401 (the session fixture that prints the totals)
)
from testpaths import FAKE_TRAINER

from kohya_orchestrator.fsutil import TEMP_PREFIX
from kohya_orchestrator.locking import LOCK_NAME
from robustness.test_hostile import images

FAST_SEEDS = (1,)
FULL = 30
CAPTION_IMAGES = 100  # for caption --tags (test_faults.py kills caption on 240)
LORA_MB = 6  # per file: copying three of them takes a while, as a real export does

State = dict[str, tuple[str, str]]


def snapshot(folder: Path, root: Path) -> tuple[State, list[str]]:
    """(every file and link under `folder`, paths abstracted; the temps and lock files)."""
    state: State = {}
    tool: list[str] = []
    mark = str(root).encode()
    if not folder.exists():
        return state, tool
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.name.startswith(TEMP_PREFIX) or path.name == LOCK_NAME:
            tool.append(rel)
        elif path.is_symlink():
            state[rel] = ("link", os.readlink(path).replace(str(root), "<ROOT>"))
        elif path.is_file():
            state[rel] = ("file", sha(path.read_bytes().replace(mark, b"<ROOT>")))
    return state, tool


@dataclass
class Target:
    """One command under the kill trials and what an uninterrupted run of it leaves."""

    name: str
    fresh: Callable[[Path], None]  # fill a trial's root with what the command works on
    argv: Callable[[Path], list[str]]
    watched: Callable[[Path], Path]  # the folder whose files the command writes
    before: State
    final: State
    duration: float
    planned: float


def _baseline(
    name: str,
    base: Path,
    fresh: Callable[[Path], None],
    argv: Callable[[Path], list[str]],
    watched: Callable[[Path], Path],
    *,
    dry_run: bool,
) -> Target:
    """Run the command uninterrupted (after a warm-up) to learn its result and duration."""
    roots = [base / f"{name}-{i}" for i in range(3)]
    for root in roots:
        root.mkdir(parents=True)
        fresh(root)
    before = snapshot(watched(roots[0]), roots[0])[0]
    timed(argv(roots[0]))
    duration = timed(argv(roots[1]))
    planned = timed([*argv(roots[2]), "--dry-run"]) if dry_run else 0.0
    final, tool = snapshot(watched(roots[1]), roots[1])
    assert not tool, tool
    assert final != before
    return Target(name, fresh, argv, watched, before, final, duration, planned)


def _trial(tmp_path: Path, target: Target, seed: int) -> None:
    root = tmp_path / "t"
    root.mkdir()
    target.fresh(root)
    killed = kill_after(target.argv(root), draw(seed, target.duration, target.planned))
    where = f"{target.name} seed {seed}: killed after {killed.delay:.3f}s (killed={killed.killed})"
    print(where)
    record(target.name, killed.killed)
    check = Checker(target.name, where)
    now, _tool = snapshot(target.watched(root), root)
    for rel in sorted(set(now) | set(target.before) | set(target.final)):
        got, old, new = now.get(rel), target.before.get(rel), target.final.get(rel)
        if got is None:
            check(old is None or new is None, "lost", f"{rel} is missing")
        else:
            kind = "corrupt" if got[0] == "file" else "other"
            check(got in (old, new), kind, f"{rel} is neither as it was nor as a run leaves it")
    halfway(target.name, now not in (target.before, target.final))
    again = run(target.argv(root))
    check(again.returncode == 0, "other", f"second run failed: {again.stderr}")
    check("Traceback" not in again.stderr, "other", again.stderr)
    final, _ = snapshot(target.watched(root), root)
    check(final == target.final, "other", "final state differs from an uninterrupted run")
    no_temps_left(check, root)
    check.done()


# ----------------------------------------------------------------------------- the targets


def _big_lora(path: Path, epoch: int) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    half = LORA_MB * 1024 * 1024 // 4  # float16 elements in each of two tensors
    rng = np.random.default_rng(epoch)
    module = "lora_unet_input_blocks_4_1_proj_in"
    tensors = {
        f"{module}.lora_down.weight": rng.standard_normal((half // 64, 64)).astype(np.float16),
        f"{module}.lora_up.weight": rng.standard_normal((64, half // 64)).astype(np.float16),
        f"{module}.alpha": np.array(8, dtype=np.float16),
    }
    meta = rf.lora_metadata("yumoto_hakone", epoch, epochs=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the targets read but never write: a run with big LoRA files, a prepared
    project, sample images for a grid, a stand-in sd-scripts and its Python."""
    base = tmp_path_factory.mktemp("more")
    run_dest = base / "run"
    rf.write_settings(run_dest, epochs=3)
    for epoch in (1, 2, 3):
        stem = "yumoto_hakone" if epoch == 3 else f"yumoto_hakone-{epoch:06d}"
        _big_lora(run_dest / "model" / f"{stem}.safetensors", epoch)
    grid = base / "grid"
    rf.write_settings(grid, epochs=8)
    for epoch in range(1, 9):
        for prompt in range(4):
            color = (30 * epoch, 60 * prompt, 120)
            rf.write_sample(grid, rf.sample_name("yumoto_hakone", epoch, prompt), color, (256, 256))
    imgs = images(base / "imgs", ("a.png", "b.jpg", "c.webp", "d.png"))
    model = checkpoint(base / "m.safetensors")
    dest = base / "project"
    argv = [*CLI, "prepare", "hero", "--images", str(imgs), "--dest", str(dest)]
    done = run([*argv, "--model", str(model), "--set", "sample_every_n_epochs=1"])
    assert done.returncode == 0, done.stderr
    sd = base / "sd-scripts"
    sd.mkdir()
    shutil.copy(FAKE_TRAINER, sd / "sdxl_train_network.py")
    fake_sd_python(base / "sd-python")
    return base


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return make_pristine(tmp_path_factory, images=CAPTION_IMAGES)


def _copy_project(shared: Path) -> Callable[[Path], None]:
    def fresh(root: Path) -> None:
        shutil.copytree(shared / "project", root / "dest", symlinks=True)

    return fresh


@pytest.fixture(scope="module")
def targets(
    shared: Path, pristine: Pristine, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Target]:
    base = tmp_path_factory.mktemp("baselines")
    out: dict[str, Target] = {}

    def forge(root: Path) -> None:
        (root / "forge").mkdir()

    for name, extra in (("export", []), ("export --link", ["--link"])):
        out[name] = _baseline(
            name,
            base,
            forge,
            lambda root, extra=extra: [  # type: ignore[misc]
                *(*CLI, "export", str(shared / "run"), "--to", str(root / "forge")),
                *extra,
            ],
            lambda root: root / "forge",
            dry_run=True,
        )
    project = _copy_project(shared)
    out["config"] = _baseline(
        "config",
        base,
        project,
        lambda root: [*CLI, "config", str(root / "dest")],
        lambda root: root / "dest",
        dry_run=True,
    )
    out["templates cp"] = _baseline(
        "templates cp",
        base,
        project,
        lambda root: [*CLI, "templates", "cp", "sdxl_lora.toml.j2", str(root / "dest"), "--force"],
        lambda root: root / "dest",
        dry_run=False,
    )

    def dataset(root: Path) -> None:
        shutil.copytree(pristine.source, root / "data")

    out["caption --tags"] = _baseline(
        "caption --tags",
        base,
        dataset,
        lambda root: [*CLI, "caption", TRIGGER, str(root / "data"), "-q", "--tags", "1boy, solo"],
        lambda root: root / "data",
        dry_run=True,
    )

    def grid(root: Path) -> None:
        shutil.copytree(shared / "grid", root / "run")

    out["grid"] = _baseline(
        "grid",
        base,
        grid,
        lambda root: [*CLI, "grid", str(root / "run")],
        lambda root: root / "run",
        dry_run=False,
    )
    return out


KILLED = ["export", "export --link", "config", "templates cp", "caption --tags", "grid"]


@pytest.mark.parametrize("seed", FAST_SEEDS)
@pytest.mark.parametrize("command", KILLED)
def test_kill(tmp_path: Path, targets: dict[str, Target], command: str, seed: int) -> None:
    _trial(tmp_path, targets[command], seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(5000, 5000 + FULL))
@pytest.mark.parametrize("command", KILLED)
def test_kill_many(tmp_path: Path, targets: dict[str, Target], command: str, seed: int) -> None:
    _trial(tmp_path, targets[command], seed)


# ------------------------------------------------------------------------ train's record


def _train_argv(shared: Path, root: Path) -> list[str]:
    return [
        *(*CLI, "train", str(root / "dest")),
        *("--sd-scripts", str(shared / "sd-scripts"), "--python", str(shared / "sd-python")),
        "--force",
    ]


def _train_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FAKE_TRAINER_MODE="exit:0",
        FAKE_TRAINER_PIDFILE=str(root / "trainer.pid"),
        HF_HOME=str(root / "hf"),
        KOHYA_SD_SCRIPTS=str(root / "none"),
    )
    return env


def _wait_for_trainer(root: Path) -> None:
    """A killed `train` leaves its trainer running in its own session: let it end."""
    pidfile = root / "trainer.pid"
    deadline = time.monotonic() + 30
    while pidfile.exists() and time.monotonic() < deadline:
        try:
            os.kill(int(pidfile.read_text() or "0"), 0)
        except (ProcessLookupError, ValueError):
            return
        time.sleep(0.05)


def _records(check: Checker, dest: Path) -> dict[str, dict[str, object]]:
    """Every run record in DEST/runs by name: each must be whole JSON (never partial)."""
    found = {}
    runs = dest / "runs"
    for path in sorted(runs.iterdir()) if runs.exists() else []:
        if path.name.startswith(TEMP_PREFIX):
            continue
        try:
            found[path.name] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            check(False, "corrupt", f"{path.name} is not whole JSON")
    return found


@dataclass
class TrainBaseline:
    duration: float
    planned: float
    config: State


@pytest.fixture(scope="module")
def train_baseline(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainBaseline:
    base = tmp_path_factory.mktemp("train")
    times = []
    for i in range(2):
        root = base / f"r{i}"
        _copy_project(shared)(root)
        start = time.monotonic()
        done = run(_train_argv(shared, root), env=_train_env(root))
        times.append(time.monotonic() - start)
        assert done.returncode == 0, done.stderr
    root = base / "r2"
    _copy_project(shared)(root)
    start = time.monotonic()
    run([*_train_argv(shared, root), "--dry-run"], env=_train_env(root))
    planned = time.monotonic() - start
    state = snapshot(base / "r1" / "dest", base / "r1")[0]
    config = {k: v for k, v in state.items() if k in ("config.toml", "sample_prompts.txt")}
    return TrainBaseline(times[1], planned, config)


def _train_trial(tmp_path: Path, shared: Path, base: TrainBaseline, seed: int) -> None:
    root = tmp_path / "t"
    _copy_project(shared)(root)
    env = _train_env(root)
    argv = _train_argv(shared, root)
    killed = kill_after(argv, draw(seed, base.duration, base.planned), env=env)
    where = f"train seed {seed}: killed after {killed.delay:.3f}s (killed={killed.killed})"
    print(where)
    record("train's record", killed.killed)
    check = Checker("train's record", where)
    _wait_for_trainer(root)
    dest = root / "dest"
    first = _records(check, dest)
    halfway("train's record", any(r.get("exit_code") is None for r in first.values()))
    again = run(argv, env=env)
    check(again.returncode == 0, "other", f"second run failed: {again.stderr}")
    records = _records(check, dest)
    new = [name for name in records if name not in first]
    check(len(new) == 1, "other", f"records {sorted(first)} before, {sorted(records)} after")
    for name in new:
        mine = records[name]
        shown = f"{name}: {json.dumps({k: mine.get(k) for k in ('log', 'exit_code')})}"
        check(mine.get("exit_code") == 0, "other", f"the re-run's record is not finished: {shown}")
        log = Path(str(mine.get("log")))
        check(log.is_file(), "lost", f"the re-run's log is missing: {shown}; {again.stdout[-500:]}")
    logs = [str(r.get("log")) for r in records.values()]
    check(len(set(logs)) == len(logs), "duplicated", f"two records share a log: {logs}")
    state = snapshot(dest, root)[0]
    config = {k: v for k, v in state.items() if k in base.config}
    check(config == base.config, "other", "config.toml differs from an uninterrupted run")
    no_temps_left(check, dest)
    check.done()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_kill_train(tmp_path: Path, shared: Path, train_baseline: TrainBaseline, seed: int) -> None:
    _train_trial(tmp_path, shared, train_baseline, seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(6000, 6000 + FULL))
def test_kill_train_many(
    tmp_path: Path, shared: Path, train_baseline: TrainBaseline, seed: int
) -> None:
    _train_trial(tmp_path, shared, train_baseline, seed)
