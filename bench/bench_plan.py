"""Benchmark: `plan` on 10,000 images (target < 2 s) and `validate` (target < 0.3 s).

The images are real PNG, JPEG and WebP files (12 sizes, copied to 10,000 names in three
concept folders); plan reads only their headers. `validate` is timed twice: `lint_file`
in-process, and the whole `kohya-orch validate` command in a fresh Python process (interpreter
start included; a bare `python -c pass` is given beside it for scale).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

N_IMAGES = 10_000
RUNS = 5
SIZES = [
    (512, 512),
    (768, 768),
    (1024, 1024),
    (600, 900),
    (900, 600),
    (832, 1216),
    (1216, 832),
    (2000, 500),
    (480, 640),
    (1920, 1080),
    (300, 300),
    (1536, 2048),
]


def _median(fn: Callable[[], Any], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _make_dataset(root: Path) -> Path:
    from PIL import Image

    blobs = []
    for i, (w, h) in enumerate(SIZES):
        fmt, ext = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")][i % 3]
        buf = BytesIO()
        Image.new("RGB", (w, h), (i * 20 % 255, 80, 160)).save(buf, fmt)
        blobs.append((buf.getvalue(), ext))
    img = root / "img"
    for n in range(N_IMAGES):
        folder = img / ("7_alpha", "3_beta", "1_gamma")[n % 3]
        folder.mkdir(parents=True, exist_ok=True)
        data, ext = blobs[n % len(blobs)]
        (folder / f"img_{n:05d}.{ext}").write_bytes(data)
        (folder / f"img_{n:05d}.txt").write_text("alpha, beta\n", encoding="utf-8")
    return img


def _config(root: Path, img: Path) -> Path:
    model = root / "model.safetensors"
    model.write_bytes(b"stand-in")
    (root / "out").mkdir(exist_ok=True)
    path = root / "config.toml"
    path.write_text(
        f"""[model]
pretrained_model_name_or_path = "{model}"
[dataset]
train_data_dir = "{img}"
resolution = "512,512"
enable_bucket = true
caption_extension = ".txt"
[network]
network_module = "networks.lora"
network_dim = 16
network_alpha = 8
[training]
output_dir = "{root / "out"}"
output_name = "bench"
max_train_epochs = 15
save_every_n_epochs = 1
train_batch_size = 4
learning_rate = 2.5e-5
lr_scheduler = "constant_with_warmup"
lr_warmup_steps = 0.05
optimizer_type = "AdamW"
mixed_precision = "no"
sdpa = true
""",
        encoding="utf-8",
    )
    return path


def run() -> list[dict[str, Any]]:
    import toml

    from kohya_orchestrator.lint.linter import lint_file
    from kohya_orchestrator.sdscripts.contract import flatten_like_sd_scripts
    from kohya_orchestrator.train.steps import count_steps

    root = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    try:
        img = _make_dataset(root)
        config = _config(root, img)
        args = flatten_like_sd_scripts(toml.load(config))
        plan = count_steps(args)
        assert plan.train_images == N_IMAGES, plan.train_images
        plan_s = _median(lambda: count_steps(args))

        # validate on the same config: it also scans the 10,000-image folder for captions.
        small_img = root / "small" / "img"
        for n in range(30):
            src = img / "7_alpha" / f"img_{n * 3:05d}"
            dst = small_img / "7_alpha"
            dst.mkdir(parents=True, exist_ok=True)
            for suffix in (".png", ".jpg", ".webp", ".txt"):
                if src.with_suffix(suffix).exists():
                    shutil.copy(src.with_suffix(suffix), dst / (src.name + suffix))
        small = _config(root / "small", small_img)
        assert lint_file(small).ok
        lint_small_s = _median(lambda: lint_file(small))
        lint_big_s = _median(lambda: lint_file(config))
        cmd = [sys.executable, "-m", "kohya_orchestrator", "validate", str(small)]
        proc_s = _median(lambda: subprocess.run(cmd, capture_output=True, check=True))
        bare_s = _median(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        {
            "name": f"plan, {N_IMAGES:,} images (headers only)",
            "value": plan_s,
            "unit": "s",
            "target": "< 2 s",
            "ok": plan_s < 2.0,
            "note": f"{N_IMAGES / plan_s:,.0f} images/s, {plan_s / 2.0:.0%} of target",
        },
        {
            "name": "validate, lint_file in-process (30 images)",
            "value": lint_small_s,
            "unit": "s",
            "target": "< 0.3 s",
            "ok": lint_small_s < 0.3,
            "note": f"{lint_small_s / 0.3:.0%} of target",
        },
        {
            "name": f"validate, lint_file in-process ({N_IMAGES:,} images)",
            "value": lint_big_s,
            "unit": "s",
            "target": "< 0.3 s",
            "ok": lint_big_s < 0.3,
            "note": f"{lint_big_s / 0.3:.0%} of target; scans every caption",
        },
        {
            "name": "kohya-orch validate, whole process (30 images)",
            "value": proc_s,
            "unit": "s",
            "target": "< 0.3 s",
            "ok": proc_s < 0.3,
            "note": f"bare python -c pass {bare_s:.3f} s = {bare_s / proc_s:.0%} of it",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
