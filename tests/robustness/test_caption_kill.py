"""SIGKILL the caption command at random moments: every image stays old or new, never broken.

Each trial copies a pristine folder, starts `kohya-orch caption` in a subprocess and kills
it with SIGKILL at a random moment: half the trials anywhere within about two runs' time,
half just after the first file changed, where the writes happen. Then every image must
decode and be byte for byte either the original or the fully captioned file, and every
caption file either the old one (or absent) or the new one. A second, uninterrupted run
must finish the job and clean up the temp files. A few trials run by default; `make
faults` runs many.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from imagefactory import KINDS as IMAGE_KINDS
from imagefactory import make_image
from PIL import Image

from kohya_orchestrator import fsutil
from kohya_orchestrator.dataset.caption_apply import apply_captions, plan_captions
from kohya_orchestrator.locking import LOCK_NAME

TRIGGER = "yumoto_hakone"
KINDS = [
    "jpeg_baseline",
    "jpeg_progressive",
    "jpeg_exif_le",
    "png_rgb",
    "png_rgba",
    "png_apng",
    "webp_lossy",
    "webp_lossless",
    "webp_animated",
]
COPIES = 3  # of each kind, so a run does enough writes to be hit in the middle
SIZE = (320, 240)

State = dict[str, bytes | None]


def _state(folder: Path) -> State:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.is_dir()}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, State, State, float]:
    """The folder before captioning, its files before and after, and a full run's duration."""
    base = tmp_path_factory.mktemp("kill")
    folder = base / "pristine"
    folder.mkdir()
    for kind in KINDS:
        for n in range(COPIES):
            make_image(kind, folder / f"{kind}_{n}{IMAGE_KINDS[kind].ext}", SIZE)
    for i, p in enumerate(sorted(folder.iterdir())):
        if i % 2:
            p.with_suffix(".txt").write_text(f"glasses, tag{i}", encoding="utf-8")
    before = _state(folder)
    done = base / "done"
    shutil.copytree(folder, done)
    apply_captions(plan_captions(done, TRIGGER))
    after = _state(done)
    timing = base / "timing"
    shutil.copytree(folder, timing)
    start = time.monotonic()
    _command(timing).wait()
    duration = time.monotonic() - start
    assert _state(timing) == after
    return folder, before, after, duration


def _command(folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kohya_orchestrator", "caption", TRIGGER, str(folder), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_first_change(folder: Path, before: State, proc: subprocess.Popen[bytes]) -> None:
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    while proc.poll() is None:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name == LOCK_NAME:
                    continue  # taken before anything is written
                if entry.name not in before or entry.stat().st_mtime_ns != stamps[entry.name]:
                    return


def _check(folder: Path, before: State, after: State, where: str) -> None:
    for name in sorted(set(before) | set(after)):
        path = folder / name
        now = path.read_bytes() if path.exists() else None
        assert now in (before.get(name), after[name]), f"{name} is neither old nor new {where}"
        if now is not None and not name.endswith(".txt"):
            with Image.open(path) as img:
                img.load()
    extra = [p.name for p in folder.iterdir() if p.name not in after and p.name != LOCK_NAME]
    assert all(n.startswith(fsutil.TEMP_PREFIX) for n in extra), extra


def _trial(tmp_path: Path, pristine: tuple[Path, State, State, float], seed: int) -> None:
    source, before, after, duration = pristine
    rnd = random.Random(seed)
    folder = tmp_path / f"trial{seed}"
    shutil.copytree(source, folder)
    proc = _command(folder)
    if seed % 2:
        _wait_for_first_change(folder, before, proc)
        delay = rnd.uniform(0, duration / 4)
    else:
        delay = rnd.uniform(0, 2 * duration)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    where = f"(seed {seed}, killed {delay:.3f}s in, exit {proc.returncode})"
    _check(folder, before, after, where)
    rerun = _command(folder)
    assert rerun.wait() == 0, where
    # The re-run removed the killed run's temps and its lock file: exactly the new files.
    assert _state(folder) == after, where


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_during_caption(
    tmp_path: Path, pristine: tuple[Path, State, State, float], seed: int
) -> None:
    _trial(tmp_path, pristine, seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(100, 140))
def test_kill_during_caption_many(
    tmp_path: Path, pristine: tuple[Path, State, State, float], seed: int
) -> None:
    _trial(tmp_path, pristine, seed)
