"""`captions --stats` on 10,000 captions, and `captions --duplicates` on 1,000 1024x1024 images.

--stats: 10,000 small image files with a booru-tag caption each (a trigger, 5-25 tags drawn
from 400), the whole command timed (start-up included), median of 3: target < 1 s.
--duplicates: bench_caption's 300 generated 1024x1024 JPEG/PNG/WebP images, each copied
under 3 or 4 names to make 1,000 files; the hashing (find_duplicates, in-process) against a
plain Pillow decode of the same files, images/s each: target >= 0.5x the decode speed.
Run with `python bench/run.py tags`.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
STATS = OUT / "stats_src"
DUPES = OUT / "dupes_src"
CAPTIONS = 10_000
IMAGES = 1_000
_STAMP = "v2"


def _stats_dataset() -> Path:
    stamp = STATS / ".complete"
    if stamp.exists() and stamp.read_text() == _STAMP:
        return STATS
    if STATS.exists():
        shutil.rmtree(STATS)
    STATS.mkdir(parents=True)
    rng = random.Random(13)
    vocab = [f"tag {i}" for i in range(400)]
    for i in range(CAPTIONS):
        (STATS / f"img_{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        tags = rng.sample(vocab, rng.randint(5, 25))
        (STATS / f"img_{i}.txt").write_text(", ".join(["hero", *tags]) + "\n", encoding="utf-8")
    stamp.write_text(_STAMP)
    return STATS


def _dupes_dataset() -> Path:
    stamp = DUPES / ".complete"
    if stamp.exists() and stamp.read_text() == _STAMP:
        return DUPES
    spec = importlib.util.spec_from_file_location("bench_caption", HERE / "bench_caption.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sources = [p for p in module.generate() if p.suffix in (".jpg", ".png", ".webp")]
    if DUPES.exists():
        shutil.rmtree(DUPES)
    DUPES.mkdir(parents=True)
    for i in range(IMAGES):
        src = sources[i % len(sources)]
        shutil.copyfile(src, DUPES / f"d_{i:04d}{src.suffix}")
    stamp.write_text(_STAMP)
    return DUPES


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    stats_dir = _stats_dataset()
    argv = [sys.executable, "-m", "kohya_orchestrator", "captions", str(stats_dir), "--stats"]
    _timed(argv)
    stats = statistics.median(_timed(argv) for _ in range(3))
    rows: list[dict[str, Any]] = [
        {
            "name": f"captions --stats, {CAPTIONS:,} captions",
            "value": stats,
            "unit": "s",
            "target": "< 1 s",
            "ok": stats < 1.0,
            "note": "whole command, start-up included, median of 3",
        }
    ]
    try:
        import imagehash  # noqa: F401
    except ImportError:
        return rows
    from PIL import Image

    from kohya_orchestrator.dataset.duplicates import find_duplicates

    folder = _dupes_dataset()
    files = sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png", ".webp"))
    decode, hashing = [], []
    for _ in range(2):
        start = time.perf_counter()
        for path in files:
            with Image.open(path) as img:
                img.load()
        decode.append(len(files) / (time.perf_counter() - start))
        start = time.perf_counter()
        groups, _ = find_duplicates(folder)
        hashing.append(len(files) / (time.perf_counter() - start))
    dec, hsh = max(decode), max(hashing)
    ratio = hsh / dec
    rows += [
        {
            "name": f"Pillow decode, {len(files):,} 1024x1024 images",
            "value": dec,
            "unit": "images/s",
            "target": "",
            "ok": None,
            "note": "bench_caption's 300 JPEG/PNG/WebP, copied to 1,000 files; best of 2",
        },
        {
            "name": f"captions --duplicates, {len(files):,} 1024x1024 images",
            "value": hsh,
            "unit": "images/s",
            "target": ">= 0.5x decode",
            "ok": ratio >= 0.5,
            "note": f"{ratio:.2f}x the decode speed; {len(groups)} groups; best of 2",
        },
    ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
