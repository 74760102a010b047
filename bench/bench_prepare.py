"""`prepare` with links vs copies: the same 300-image dataset, end to end, whole command.

The images are bench_caption's 300 generated 1024x1024 JPEG/PNG/WebP files (made once in
bench/out/caption_src), copied once into bench/out/prepare_src with a `.txt` caption each.
Each run times `python -m kohya_orchestrator prepare` into a fresh DEST (start-up
included) with --symlink (the default), --hardlink and --copy (every copy fsynced), and a
second --symlink run on the same DEST (the re-sync: nothing to change). Medians of RUNS
runs; the ratios compare each mode with symlinks. Run with `python bench/run.py prepare`.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SRC = OUT / "prepare_src"
WORK = OUT / "prepare_work"
RUNS = 5
MODES = ("symlink", "hardlink", "copy")
_STAMP = "v1"


def _caption_images() -> list[Path]:
    spec = importlib.util.spec_from_file_location("bench_caption", HERE / "bench_caption.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images: list[Path] = module.generate()
    return images


def dataset() -> tuple[Path, Path, int]:
    """The source folder (images + captions), a checkpoint, and the image count."""
    stamp = SRC / ".complete"
    model = OUT / "prepare_model.safetensors"
    if not (stamp.exists() and stamp.read_text() == _STAMP and model.exists()):
        if SRC.exists():
            shutil.rmtree(SRC)
        SRC.mkdir(parents=True)
        for i, image in enumerate(_caption_images()):
            shutil.copyfile(image, SRC / image.name)
            (SRC / f"{image.stem}.txt").write_text(f"hero, tag{i}\n", encoding="utf-8")
        import numpy as np
        from safetensors.numpy import save_file

        keys = (
            "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
            "model.diffusion_model.input_blocks.0.0.weight",
        )
        save_file({k: np.zeros((2, 2), dtype=np.float16) for k in keys}, str(model))
        stamp.write_text(_STAMP)
    count = sum(1 for p in SRC.iterdir() if p.suffix in (".jpg", ".png", ".webp"))
    return SRC, model, count


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    source, model, count = dataset()
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    resync: list[float] = []
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(RUNS):
            for mode in MODES:
                dest = WORK / f"{mode}-{i}"
                argv = [
                    sys.executable,
                    "-m",
                    "kohya_orchestrator",
                    "prepare",
                    "hero",
                    "--images",
                    str(source),
                    "--dest",
                    str(dest),
                    "--model",
                    str(model),
                    f"--{mode}",
                ]
                times[mode].append(_timed(argv))
                if mode == "symlink":
                    resync.append(_timed(argv))
                shutil.rmtree(dest)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    size_mb = sum(p.stat().st_size for p in source.iterdir() if p.is_file()) / 1e6
    link = statistics.median(times["symlink"])
    rows: list[dict[str, Any]] = []
    for mode in MODES:
        value = statistics.median(times[mode])
        ratio = "" if mode == "symlink" else f", {value / link:.1f}x symlinks"
        rows.append(
            {
                "name": f"prepare {count} images + captions, --{mode}",
                "value": value,
                "unit": "s",
                "target": "",
                "ok": None,
                "note": f"{2 * count / value:,.0f} files/s{ratio}; {size_mb:.0f} MB; "
                f"median of {RUNS}, start-up included",
            }
        )
    again = statistics.median(resync)
    rows.append(
        {
            "name": f"prepare re-sync, {count} images, nothing to change",
            "value": again,
            "unit": "s",
            "target": "",
            "ok": None,
            "note": f"{again / link:.2f}x the first --symlink run; median of {RUNS}",
        }
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
