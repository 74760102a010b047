"""`prepare` with links vs copies: the same 300-image dataset, end to end, whole command.

The images are bench_caption's 300 generated 1024x1024 JPEG/PNG/WebP files (made once in
bench/out/caption_src), copied once into bench/out/prepare_src with a `.txt` caption each.
Each run times `python -m kohya_orchestrator prepare` into a fresh DEST (start-up
included) with --symlink (the default), --hardlink and --copy (every copy fsynced), and a
second --symlink run on the same DEST (the re-sync: nothing to change). Medians of RUNS
runs; the ratios compare each mode with symlinks. Run with `python bench/run.py prepare`.

The corrected copies: the same 300 images with 10 of them replaced by images sd-scripts
would misread (3 rotated JPEGs, 3 RGBA PNGs, 2 16-bit PNGs, 2 animated WebPs, all
1024x1024), prepared with the default --fix-images, against the --symlink run of the
plain folder with --no-fix-images (what `prepare` did before it read any header): target
<= 1.5x. The plain folder with the header checks on (nothing to fix) is shown too.
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
FIX_SRC = OUT / "prepare_fix_src"
FIXES = 10
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


def fix_dataset(source: Path) -> Path:
    """The 300 images with FIXES of them replaced by images sd-scripts would misread."""
    stamp = FIX_SRC / ".complete"
    if stamp.exists() and stamp.read_text() == _STAMP:
        return FIX_SRC
    import numpy as np
    from PIL import Image

    if FIX_SRC.exists():
        shutil.rmtree(FIX_SRC)
    shutil.copytree(source, FIX_SRC)
    images = sorted(p for p in FIX_SRC.iterdir() if p.suffix in (".jpg", ".png", ".webp"))
    rng = np.random.default_rng(7)
    for i, old in enumerate(images[:: len(images) // FIXES][:FIXES]):
        old.unlink()
        y, x = np.mgrid[0:1024, 0:1024]
        base = np.stack([x // 4, y // 4, (x + y) // 8], -1) % 256
        noise = rng.integers(0, 24, (1024, 1024, 3))
        img = Image.fromarray((base + noise).clip(0, 255).astype(np.uint8), "RGB")
        kind = ("jpeg", "rgba", "jpeg", "deep", "rgba", "anim", "jpeg", "rgba", "deep", "anim")[i]
        if kind == "jpeg":
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(FIX_SRC / f"{old.stem}.jpg", quality=90, exif=exif.tobytes())
        elif kind == "rgba":
            img.putalpha(Image.fromarray(((x // 64 + y // 64) % 2 * 255).astype(np.uint8)))
            img.save(FIX_SRC / f"{old.stem}.png")
        elif kind == "deep":
            grey = np.asarray(img.convert("L"), dtype=np.uint16) * 257
            Image.fromarray(grey).save(FIX_SRC / f"{old.stem}.png")
        else:
            frames = [img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
            frames[0].save(
                FIX_SRC / f"{old.stem}.webp", save_all=True, append_images=frames[1:], quality=80
            )
    stamp.write_text(_STAMP)
    return FIX_SRC


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
    rows = _rows(source, count, times, resync)
    return rows + _fix_rows(source, model, count)


def _prepare_argv(source: Path, dest: Path, model: Path, *extra: str) -> list[str]:
    return [
        *(sys.executable, "-m", "kohya_orchestrator", "prepare", "hero"),
        *("--images", str(source), "--dest", str(dest), "--model", str(model), *extra),
    ]


def _fix_rows(source: Path, model: Path, count: int) -> list[dict[str, Any]]:
    fixing = fix_dataset(source)
    times: dict[str, list[float]] = {"before": [], "checked": [], "fixed": []}
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(RUNS):
            for name, folder, extra in (
                ("before", source, ("--no-fix-images",)),
                ("checked", source, ()),
                ("fixed", fixing, ()),
            ):
                dest = WORK / f"{name}-{i}"
                times[name].append(_timed(_prepare_argv(folder, dest, model, *extra)))
                shutil.rmtree(dest)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    before, checked, fixed = (statistics.median(times[k]) for k in ("before", "checked", "fixed"))
    ratio = fixed / before
    return [
        {
            "name": f"prepare {count} images, --no-fix-images (links only, no header read)",
            "value": before,
            "unit": "s",
            "target": "",
            "ok": None,
            "note": f"median of {RUNS}, start-up included",
        },
        {
            "name": f"prepare {count} images, header checks on, nothing to fix",
            "value": checked,
            "unit": "s",
            "target": "",
            "ok": None,
            "note": f"{checked / before:.2f}x --no-fix-images; median of {RUNS}",
        },
        {
            "name": f"prepare {count} images of which {FIXES} need fixing (1024x1024 copies)",
            "value": ratio,
            "unit": "x",
            "target": "<= 1.5x",
            "ok": ratio <= 1.5,
            "note": f"{fixed:.3f} s vs {before:.3f} s for the --no-fix-images symlink run; "
            f"median of {RUNS}, start-up included",
        },
    ]


def _rows(
    source: Path, count: int, times: dict[str, list[float]], resync: list[float]
) -> list[dict[str, Any]]:
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
