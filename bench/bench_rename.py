"""Renaming 10,000 images with a caption each (20,000 files) end to end (target: under 5 s)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

IMAGES = 10_000
RUNS = 3


def _make_folder(root: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-rename-", dir=root))
    for i in range(IMAGES):
        (folder / f"IMG {i}.jpg").write_bytes(b"\xff\xd8\xff" + i.to_bytes(4, "big"))
        (folder / f"IMG {i}.txt").write_bytes(b"caption %d" % i)
    return folder


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    cli = [sys.executable, "-m", "kohya_orchestrator", "rename"]
    root = Path(tempfile.mkdtemp(prefix="kohya-orch-bench-"))
    renames, undos, dry_runs = [], [], []
    try:
        for _ in range(RUNS):
            folder = _make_folder(root)
            dry_runs.append(_timed([*cli, "p", str(folder), "--dry-run"]))
            renames.append(_timed([*cli, "p", str(folder), "--yes"]))
            assert (folder / "p_00001.jpg").exists() and (folder / "p_10000.txt").exists()
            undos.append(_timed([*cli, "--undo", str(folder)]))
            assert (folder / "IMG 0.jpg").exists()
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    files = 2 * IMAGES
    rename = statistics.median(renames)
    return [
        {
            "name": f"rename {IMAGES:,} images + captions",
            "value": rename,
            "unit": "s",
            "target": "< 5 s",
            "ok": rename < 5,
            "note": f"{files / rename:,.0f} files/s incl. start-up, median of {RUNS}",
        },
        {
            "name": f"rename --dry-run, {IMAGES:,} images",
            "value": statistics.median(dry_runs),
            "unit": "s",
            "target": "",
            "ok": None,
            "note": f"median of {RUNS}",
        },
        {
            "name": f"rename --undo, {IMAGES:,} images",
            "value": statistics.median(undos),
            "unit": "s",
            "target": "",
            "ok": None,
            "note": f"median of {RUNS}",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
