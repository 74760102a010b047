"""Two mutating commands at once on one folder: the lock lets one work and refuses the other.

Each pair starts command A, then command B after a delay drawn within A's measured duration
(for odd seeds, within the window where B reaches the lock while A holds it, as timed by
having each refused once; seeded), both real subprocesses on the same folder. Each
must either finish (exit 0) or be refused at once (exit 1 with exactly "another kohya-orch
(pid N: A) is working in DIR since HH:MM:SS" and its hint). The folder must then be what
running the ones that finished one
after the other leaves (in either order when both finished: they did not overlap), which
also says the refused one changed nothing; and no temp and no lock file is left.

The combinations cover every command that takes a lock, on the folder they share: the
images folder (rename, rename --undo, caption, caption --tags), DEST (prepare, config,
templates cp, train, grid) and the Forge folder (export, export --link). `make faults`
runs 20 pairs per combination; `make test` one pair of two prepares.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import results_factory as rf
from faultkit import CLI, TRIGGER, checkpoint, fake_sd_python, make_dataset, run, sha
from faultrun import (
    STATS,
    Checker,
    no_temps_left,
    summary,  # noqa: F401 (the session fixture that prints the totals)
)
from testpaths import FAKE_TRAINER

from kohya_orchestrator.dataset.journal import JOURNAL_NAME
from kohya_orchestrator.fsutil import TEMP_PREFIX
from kohya_orchestrator.locking import LOCK_NAME
from kohya_orchestrator.project.manifest import MANIFEST_NAME

PAIRS = 20
IMAGES = 120
Snapshot = dict[str, tuple[str, str]]
Argv = Callable[[Path], list[str]]

BUSY = re.compile(
    r"Error: another kohya-orch \(pid \d+: (?P<command>[a-z -]+)\) is working in "
    r"(?P<folder>.+) since \d\d:\d\d:\d\d\n"
    r"  hint: Wait until it has finished \(or stop it\), then run this command again\.\n"
)


@dataclass(frozen=True)
class Command:
    """A command in a pair: its name (as the lock file records it) and its argv."""

    name: str
    argv: Argv


@dataclass(frozen=True)
class Combination:
    """Two commands, the folder they share (under a trial's root) and how to fill a root."""

    id: str
    a: Command
    b: Command
    fresh: Callable[[Path], None]
    folder: Callable[[Path], Path]


def snapshot(folder: Path, root: Path) -> Snapshot:
    """What a folder holds, paths abstracted; run records and logs by count, not content
    (they hold times), and the rename journal by its state (it holds a random token)."""
    out: Snapshot = {}
    mark = str(root).encode()
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.name.startswith(TEMP_PREFIX) or path.name == LOCK_NAME:
            out[rel] = ("tool", "")  # never in an expected state: shows up as a difference
        elif rel.startswith(("runs/", "log/")) or rel in ("runs", "log"):
            continue
        elif path.name == JOURNAL_NAME:
            out[rel] = ("journal", str(json.loads(path.read_text(encoding="utf-8"))["state"]))
        elif path.name == MANIFEST_NAME:
            out[rel] = ("manifest", _manifest_text(path, mark))
        elif path.is_symlink():
            out[rel] = ("link", str(path.readlink()).replace(str(root), "<ROOT>"))
        elif path.is_file():
            out[rel] = ("file", sha(path.read_bytes().replace(mark, b"<ROOT>")))
    runs = folder / "runs"
    out["<records>"] = ("count", str(len(list(runs.glob("*.json"))) if runs.exists() else 0))
    return out


# The stat of a file prepare made (a copy, a corrected copy) differs from run to run.
_VOLATILE = ("ino", "dev", "mtime_ns")


def _manifest_text(path: Path, mark: bytes) -> str:
    """The manifest as it reads, without the inode and time of each file made in DEST."""
    doc = json.loads(path.read_bytes().replace(mark, b"<ROOT>"))
    for record in (doc.get("files") or {}).values():
        for key in _VOLATILE:
            record.pop(key, None)
    return sha(json.dumps(doc, sort_keys=True).encode())


# ------------------------------------------------------------------------------ set-ups


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("together")
    make_dataset(base / "pristine", IMAGES)
    checkpoint(base / "m.safetensors")
    # The project trains: every image of its source has a caption.
    shutil.copytree(base / "pristine", base / "captioned")
    assert run([*CLI, "caption", "hero", str(base / "captioned"), "-q"]).returncode == 0
    dest = base / "project"
    argv = [*CLI, "prepare", "hero", "--images", str(base / "captioned"), "--dest", str(dest)]
    assert run([*argv, "--model", str(base / "m.safetensors")]).returncode == 0
    run_dest = base / "run"
    rf.write_settings(run_dest, epochs=3)
    rf.write_run(run_dest, epochs=3)
    for epoch in (1, 2, 3):
        rf.write_sample(run_dest, rf.sample_name("yumoto_hakone", epoch, 0), (9, 9, 9), (64, 64))
    sd = base / "sd-scripts"
    sd.mkdir()
    shutil.copy(FAKE_TRAINER, sd / "sdxl_train_network.py")
    fake_sd_python(base / "sd-python")
    undone = base / "renamed"
    shutil.copytree(base / "pristine", undone)
    assert run([*CLI, "rename", "fault", str(undone), "--yes"]).returncode == 0
    return base


def _combinations(shared: Path) -> list[Combination]:
    def data(root: Path) -> None:
        shutil.copytree(shared / "pristine", root / "data")

    def renamed(root: Path) -> None:
        shutil.copytree(shared / "renamed", root / "data")

    def project(root: Path) -> None:
        shutil.copytree(shared / "project", root / "dest", symlinks=True)

    def lora_run(root: Path) -> None:
        shutil.copytree(shared / "run", root / "dest")

    def forge(root: Path) -> None:
        (root / "forge").mkdir()

    d: Callable[[Path], str] = lambda root: str(root / "data")  # noqa: E731
    p: Callable[[Path], str] = lambda root: str(root / "dest")  # noqa: E731
    rename = Command("rename", lambda r: [*CLI, "rename", "fault", d(r), "--yes"])
    undo = Command("rename --undo", lambda r: [*CLI, "rename", "--undo", d(r)])
    caption = Command("caption", lambda r: [*CLI, "caption", TRIGGER, d(r), "-q"])
    tags = Command("caption", lambda r: [*CLI, "caption", TRIGGER, d(r), "-q", "--tags", "solo"])
    prep = [*CLI, "prepare", "hero", "--images", str(shared / "captioned")]
    model = ["--model", str(shared / "m.safetensors")]
    prepare7 = Command("prepare", lambda r: [*prep, "--dest", p(r), *model, "--repeats", "7"])
    prepare5 = Command("prepare", lambda r: [*prep, "--dest", p(r), *model, "--repeats", "5"])
    config = Command("config", lambda r: [*CLI, "config", p(r)])
    cp = Command("templates cp", lambda r: [*CLI, "templates", "cp", "sdxl_lora.toml.j2", p(r)])
    sd = ["--sd-scripts", str(shared / "sd-scripts"), "--python", str(shared / "sd-python")]
    train = Command("train", lambda r: [*CLI, "train", p(r), *sd, "--force"])
    grid = Command("grid", lambda r: [*CLI, "grid", p(r)])
    to = lambda r: ["--to", str(r / "forge")]  # noqa: E731
    export = Command("export", lambda r: [*CLI, "export", str(shared / "run"), *to(r)])
    link = Command("export", lambda r: [*CLI, "export", str(shared / "run"), *to(r), "--link"])
    images, dest, forge_dir = (
        (lambda r: r / "data"),
        (lambda r: r / "dest"),
        (lambda r: r / "forge"),
    )
    return [
        Combination("rename+caption", rename, caption, data, images),
        Combination("caption+caption --tags", caption, tags, data, images),
        Combination("rename --undo+caption", undo, caption, renamed, images),
        Combination("prepare 7+prepare 5", prepare7, prepare5, project, dest),
        Combination("prepare+config", prepare5, config, project, dest),
        Combination("config+train", config, train, project, dest),
        Combination("train+train", train, train, project, dest),
        Combination("config+templates cp", config, cp, project, dest),
        Combination("grid+grid", grid, grid, lora_run, dest),
        Combination("export+export --link", export, link, forge, forge_dir),
    ]


IDS = [
    "rename+caption",
    "caption+caption --tags",
    "rename --undo+caption",
    "prepare 7+prepare 5",
    "prepare+config",
    "config+train",
    "train+train",
    "config+templates cp",
    "grid+grid",
    "export+export --link",
]
FAST = ["prepare 7+prepare 5"]


def _env(root: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.update(FAKE_TRAINER_MODE="exit:0", HF_HOME=str(root / "hf"))
    return env


@dataclass
class Expected:
    """What the folder holds after A alone, B alone, A then B, B then A; how long A runs;
    how long A and B take from their start to the lock (timed by being refused)."""

    alone: dict[str, Snapshot]
    after: dict[str, Snapshot]
    duration: float
    to_lock: dict[str, float]

    def window(self) -> tuple[float, float]:
        """The delays of B that make it reach the lock while A holds it."""
        low = max(0.0, self.to_lock["A"] - self.to_lock["B"])
        return low, max(low + 0.01, self.duration - self.to_lock["B"])


HOLD = """
import sys, time
from pathlib import Path
from kohya_orchestrator.locking import folder_lock
with folder_lock(Path(sys.argv[1]), "holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def _to_lock(combo: Combination, label: str, base: Path) -> float:
    """How long A or B takes to start and reach the lock: the time to be refused."""
    command = combo.a if label == "A" else combo.b
    root = base / f"refused-{label}"
    root.mkdir(parents=True)
    combo.fresh(root)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(combo.folder(root))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        start = time.monotonic()
        done = run(command.argv(root), env=_env(root))
        took = time.monotonic() - start
        assert done.returncode == 1 and "another kohya-orch" in done.stderr, done.stderr
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    return took


def _sequential(combo: Combination, base: Path, order: str) -> tuple[Snapshot, float]:
    root = base / order.replace("+", "-then-")
    root.mkdir(parents=True)
    combo.fresh(root)
    took = 0.0
    for which in order.split("+"):
        command = combo.a if which == "A" else combo.b
        start = time.monotonic()
        done = run(command.argv(root), env=_env(root))
        took = took or time.monotonic() - start
        assert done.returncode == 0, (order, done.stderr)
    return snapshot(combo.folder(root), root), took


def _expected(combo: Combination, cache: dict[str, Expected], base: Path) -> Expected:
    if combo.id not in cache:
        alone_a, duration = _sequential(combo, base / combo.id, "A")
        alone_b, _ = _sequential(combo, base / combo.id, "B")
        ab, _ = _sequential(combo, base / combo.id, "A+B")
        ba, _ = _sequential(combo, base / combo.id, "B+A")
        to_lock = {
            "A": _to_lock(combo, "A", base / combo.id),
            "B": _to_lock(combo, "B", base / combo.id),
        }
        cache[combo.id] = Expected(
            {"A": alone_a, "B": alone_b}, {"A+B": ab, "B+A": ba}, duration, to_lock
        )
    return cache[combo.id]


def _pair(
    tmp_path: Path,
    shared: Path,
    cache: dict[str, Expected],
    base: Path,
    combo_id: str,
    seed: int,
) -> None:
    combo = next(c for c in _combinations(shared) if c.id == combo_id)
    want = _expected(combo, cache, base)
    root = tmp_path / "t"
    root.mkdir()
    combo.fresh(root)
    # Odd seeds start B so that it reaches the lock while A holds it (if timings hold).
    delay = random.Random(seed).uniform(*(want.window() if seed % 2 else (0, want.duration)))
    env = _env(root)
    pipe = subprocess.PIPE
    first = subprocess.Popen(combo.a.argv(root), stdout=pipe, stderr=pipe, text=True, env=env)
    time.sleep(delay)
    second = subprocess.Popen(combo.b.argv(root), stdout=pipe, stderr=pipe, text=True, env=env)
    outcomes = []
    for proc in (first, second):
        _, err = proc.communicate(timeout=120)
        outcomes.append((proc.returncode, err))
    where = f"{combo_id} seed {seed}: B started {delay:.3f}s after A"
    print(where)
    STATS[f"pairs {combo_id}"] += 1
    check = Checker(combo_id, where)
    folder = combo.folder(root)
    finished = []
    for label, (code, err) in zip("AB", outcomes, strict=True):
        check("Traceback" not in err, "other", f"{label}: a traceback:\n{err}")
        if code == 0:
            finished.append(label)
            continue
        busy = BUSY.fullmatch(err)
        check(code == 1 and busy is not None, "other", f"{label} exit {code}:\n{err}")
        if busy is not None:
            other = combo.b if label == "A" else combo.a
            check(busy["command"] == other.name, "other", f"{label} names {busy['command']}")
            check(Path(busy["folder"]) == folder, "other", f"{label} names {busy['folder']}")
    check(bool(finished), "other", "both were refused")
    now = snapshot(folder, root)
    if len(finished) == 2:
        STATS[f"overlapped {combo_id}"] += 1
        allowed = list(want.after.values())
    else:
        STATS[f"refused {combo_id}"] += 1
        allowed = [want.alone[label] for label in finished]
    check(now in allowed, "corrupt", f"the folder is not what {'+'.join(finished)} leaves")
    no_temps_left(check, root)
    check.done()


@pytest.fixture(scope="module")
def cache() -> dict[str, Expected]:
    return {}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pairs-expected")


@pytest.mark.parametrize("combo_id", FAST)
def test_two_at_once(
    tmp_path: Path, shared: Path, cache: dict[str, Expected], baselines: Path, combo_id: str
) -> None:
    _pair(tmp_path, shared, cache, baselines, combo_id, seed=1)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(7000, 7000 + PAIRS))
@pytest.mark.parametrize("combo_id", IDS)
def test_two_at_once_many(
    tmp_path: Path,
    shared: Path,
    cache: dict[str, Expected],
    baselines: Path,
    combo_id: str,
    seed: int,
) -> None:
    _pair(tmp_path, shared, cache, baselines, combo_id, seed)
