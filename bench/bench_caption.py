"""Caption speed: caption+embed vs a fsynced copy vs a Pillow re-save, on 1024x1024 images.

300 images (100 JPEG, 100 PNG, 100 WebP) are generated once into bench/out/caption_src and
reused. Each method works on a fresh copy of that folder (copying is not timed), with the
page cache warm:
- caption+embed: `plan_captions` + `apply_captions` (read, check, embed, atomic write with
  fsync of each image and each new .txt, folder fsynced once): what `kohya-orch caption`
  does after starting up. Its writes run on APPLY_WORKERS threads so fsyncs overlap; the
  single-thread figure is printed too.
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


def time_caption(files: list[Path], workers: int) -> tuple[float, dict[str, bytes]]:
    """Seconds for plan + apply on a fresh copy of the folder, and the caption files written."""
    from kohya_orchestrator.dataset.caption_apply import apply_captions, plan_captions

    folder = _fresh_copy(files)
    _warm(list(folder.iterdir()))
    start = time.perf_counter()
    result = apply_captions(plan_captions(folder, TRIGGER), workers=workers)
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
    from kohya_orchestrator.dataset.caption_apply import APPLY_WORKERS

    # Interleaved, so a slow spell of the disk hits every method alike.
    runs: dict[str, list[float]] = {"caption": [], "caption1": [], "copy": [], "copy_all": []}
    for _ in range(RUNS):
        seconds, captions = time_caption(files, APPLY_WORKERS)
        runs["caption"].append(seconds)
        runs["caption1"].append(time_caption(files, 1)[0])
        runs["copy"].append(time_copy(images))
        runs["copy_all"].append(time_copy(images, captions))
    secs = {k: statistics.median(v) for k, v in runs.items()}
    secs["resave"] = time_resave(subset)
    shutil.rmtree(WORK, ignore_errors=True)
    rate = {k: (len(subset) if k == "resave" else len(images)) / v for k, v in secs.items()}
    mb = sum(f.stat().st_size for f in images) / len(images) / 1e6
    n = len(images)

    def speed(name: str, key: str, note: str) -> dict[str, Any]:
        return {
            "name": name,
            "value": rate[key],
            "unit": "images/s",
            "target": "",
            "ok": None,
            "note": f"{note}; {secs[key]:.2f} s",
        }

    def ratio(name: str, value: float, target: float | None, note: str = "") -> dict[str, Any]:
        row: dict[str, Any] = {"name": name, "value": value, "unit": "x", "note": note}
        if target is None:
            row.update(target="", ok=None)
        elif target > 1:
            row.update(target=f">= {target:g}x", ok=value >= target)
        else:
            row.update(target=f"<= {1 / target:g}x", ok=value <= 1 / target)
        return row

    mix = f"{n} mixed JPEG/PNG/WebP 1024x1024, {mb:.2f} MB avg, median of {RUNS}"
    return [
        speed("caption+embed", "caption", f"{mix}; {APPLY_WORKERS} writer threads"),
        speed("caption+embed, 1 writer thread", "caption1", "same"),
        speed("copy + fsync per file, images", "copy", "same images"),
        speed(
            "copy + fsync per file, images and .txt",
            "copy_all",
            f"the {n} images and {n} caption files the command writes",
        ),
        speed("Pillow re-save", "resave", f"{len(subset)} of the images, same mix"),
        ratio(
            "caption+embed time / fsynced copy of the images", secs["caption"] / secs["copy"], 0.4
        ),
        ratio(
            "caption+embed time / fsynced copy of images and .txt",
            secs["caption"] / secs["copy_all"],
            0.4,
        ),
        ratio(
            "caption+embed, 1 thread, time / fsynced copy of the images",
            secs["caption1"] / secs["copy"],
            None,
            "informational: the fsyncs not overlapped",
        ),
        ratio("caption+embed speed / re-save speed", rate["caption"] / rate["resave"], 20),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
