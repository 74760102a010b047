"""Caption speed: caption+embed vs a fsynced copy vs a Pillow re-save, on 1024x1024 images.

300 images (100 JPEG, 100 PNG, 100 WebP) are generated once into bench/out/caption_src and
reused. Each method works on a fresh copy of that folder (copying is not timed), with the
page cache warm:
- caption+embed: `plan_captions` + `apply_captions` (read, check, embed, atomic write with
  fsync of each image and each new .txt, folder fsynced once): what `kohya-orch caption`
  does after starting up.
- copy + fsync: read each image and write it to a new file with one fsync per file; once
  for the images alone, once for the images plus the caption files the command writes
  (the same files: captioning fsyncs two files per image, so that is the like-for-like
  baseline; both ratios are printed).
- Pillow re-save: decode and re-encode each image in its own format (the lossy way to
  write metadata), on a 60-image subset of the same mix, since it is slow.
Figures are medians of several runs; run with `python bench/run.py caption`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SRC = OUT / "caption_src"
WORK = OUT / "caption_work"
COUNT = 300
SIZE = (1024, 1024)
RUNS = 5
RESAVE_SUBSET = 60
FORMATS = (("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"))
TRIGGER = "yumoto_hakone"
_STAMP = f"v2-{COUNT}-{SIZE[0]}x{SIZE[1]}"


def generate() -> list[Path]:
    """The benchmark images, generated once (a stamp file says they are complete)."""
    stamp = SRC / ".complete"
    if stamp.exists() and stamp.read_text() == _STAMP:
        return sorted(p for p in SRC.iterdir() if not p.name.startswith("."))
    from PIL import Image, ImageDraw

    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    print(f"generating {COUNT} images in {SRC} (once) ...", file=sys.stderr, flush=True)
    noise = Image.effect_noise(SIZE, 30)
    for i in range(COUNT):
        ext, fmt = FORMATS[i % 3]
        base = Image.linear_gradient("L").resize(SIZE).rotate(i * 7 % 360)
        img = Image.merge("RGB", (base, noise, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
        draw = ImageDraw.Draw(img)
        x = 100 + (i * 37) % 500
        draw.ellipse((x, 200, x + 400, 600), fill=(230, 200, 170))
        draw.rectangle((x - 50, 620, x + 450, 1000), fill=(40 + i % 60, 40, 60))
        params: dict[str, Any] = {"quality": 90} if fmt != "PNG" else {}
        img.save(SRC / f"img_{i:03d}.{ext}", fmt, **params)
        if i % 4 == 0:
            (SRC / f"img_{i:03d}.txt").write_text("glasses, black hair, suit\n", encoding="utf-8")
    stamp.write_text(_STAMP)
    return sorted(p for p in SRC.iterdir() if not p.name.startswith("."))


def _fresh_copy(files: list[Path]) -> Path:
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    for f in files:
        shutil.copyfile(f, WORK / f.name)
    return WORK


def _warm(files: list[Path]) -> None:
    for f in files:
        f.read_bytes()


def time_caption(files: list[Path]) -> tuple[float, dict[str, bytes]]:
    """Seconds for plan + apply on a fresh copy of the folder, and the caption files written."""
    from kohya_orchestrator.dataset.caption_apply import apply_captions, plan_captions

    folder = _fresh_copy(files)
    _warm(list(folder.iterdir()))
    start = time.perf_counter()
    result = apply_captions(plan_captions(folder, TRIGGER))
    elapsed = time.perf_counter() - start
    if result.failures or len(result.images_written) != COUNT:
        raise SystemExit(f"bench_caption: captioning failed: {result.failures[:3]}")
    return elapsed, {p.name: p.read_bytes() for p in result.captions_written}


def time_copy(images: list[Path], captions: dict[str, bytes] | None = None) -> float:
    """Seconds to copy every image (and write `captions`) to new files, one fsync per file."""
    dest = _fresh_copy([])
    _warm(images)
    start = time.perf_counter()
    for src in images:
        _write_synced(dest / src.name, src.read_bytes())
    for name, data in (captions or {}).items():
        _write_synced(dest / name, data)
    dfd = os.open(dest, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)
    return time.perf_counter() - start


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def time_resave(images: list[Path]) -> float:
    """Seconds to decode and re-encode each image (Pillow), on a fresh copy."""
    from PIL import Image

    folder = _fresh_copy(images)
    targets = sorted(folder.iterdir())
    _warm(targets)
    start = time.perf_counter()
    for path in targets:
        with Image.open(path) as img:
            img.load()
            fmt = img.format
            params: dict[str, Any] = {"quality": 90} if fmt != "PNG" else {}
            copy = img.copy()
        copy.save(path, fmt, **params)
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    files = generate()
    images = [f for f in files if f.suffix != ".txt"]
    subset = [images[i] for i in range(0, len(images), len(images) // RESAVE_SUBSET)][
        :RESAVE_SUBSET
    ]
    # Interleaved, so a slow spell of the disk hits both methods alike.
    caption_runs, copy_runs, copy_all_runs = [], [], []
    for _ in range(RUNS):
        seconds, captions = time_caption(files)
        caption_runs.append(seconds)
        copy_runs.append(time_copy(images))
        copy_all_runs.append(time_copy(images, captions))
    caption_s = statistics.median(caption_runs)
    copy_s = statistics.median(copy_runs)
    copy_all_s = statistics.median(copy_all_runs)
    resave_s = time_resave(subset)
    shutil.rmtree(WORK, ignore_errors=True)
    caption_rate = len(images) / caption_s
    copy_rate = len(images) / copy_s
    copy_all_rate = len(images) / copy_all_s
    resave_rate = len(subset) / resave_s
    mb = sum(f.stat().st_size for f in images) / len(images) / 1e6
    mix = f"{len(images)} mixed JPEG/PNG/WebP 1024x1024, {mb:.2f} MB avg"
    slower = copy_rate / caption_rate
    slower_all = copy_all_rate / caption_rate
    faster = caption_rate / resave_rate
    return [
        {
            "name": "caption+embed",
            "value": caption_rate,
            "unit": "images/s",
            "target": "",
            "ok": None,
            "note": f"{mix}; {caption_s:.2f} s, median of {RUNS}",
        },
        {
            "name": "copy + fsync per file, images",
            "value": copy_rate,
            "unit": "images/s",
            "target": "",
            "ok": None,
            "note": f"same images; {copy_s:.2f} s",
        },
        {
            "name": "copy + fsync per file, images and their .txt",
            "value": copy_all_rate,
            "unit": "images/s",
            "target": "",
            "ok": None,
            "note": f"the {len(images)} images and {len(images)} caption files the command "
            f"writes; {copy_all_s:.2f} s",
        },
        {
            "name": "Pillow re-save",
            "value": resave_rate,
            "unit": "images/s",
            "target": "",
            "ok": None,
            "note": f"{len(subset)} of the images, same mix; {resave_s:.2f} s",
        },
        {
            "name": "caption+embed time / fsynced copy of the same files",
            "value": slower_all,
            "unit": "x",
            "target": "<= 2.5x",
            "ok": slower_all <= 2.5,
        },
        {
            "name": "caption+embed time / fsynced copy of the images only",
            "value": slower,
            "unit": "x",
            "target": "<= 2.5x",
            "ok": slower <= 2.5,
            "note": "the command also fsyncs one .txt per image",
        },
        {
            "name": "caption+embed speed / re-save speed",
            "value": faster,
            "unit": "x",
            "target": ">= 20x",
            "ok": faster >= 20,
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
