"""Tests for plan, buckets and imagesize: hand-computed runs and sd-scripts' own bucket code."""

from __future__ import annotations

import ast
import json
import logging
import math
import os
import random
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image
from testpaths import VENDOR_SD_SCRIPTS

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.imagesize import image_size
from kohya_orchestrator.errors import ConfigError, DatasetError, ImageFormatError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.buckets import (
    BucketSelector,
    adjust_bucket_range,
    make_bucket_resolutions,
    parse_resolution,
)
from kohya_orchestrator.sdscripts.lora_size import lora_file_bytes
from kohya_orchestrator.train.steps import count_file, count_steps

# sd-scripts' own code, to compare with (read at test time, never copied): $SD_SCRIPTS_DIR, else
# vendor/sd-scripts after `make sd-scripts`. Tests that need it skip otherwise.
SD_SCRIPTS = Path(os.environ.get("SD_SCRIPTS_DIR", "").split(os.pathsep)[0] or VENDOR_SD_SCRIPTS)

# Worked out by hand from SD_SCRIPTS.md for 512x512 (area 262144, step 64, 256..1024):
# square 512; w=256 -> h=1024, 320 -> 768, 384 -> 640, 448 -> 576, 704 -> 320, 832/896/960
# -> 256, and the mirrored pairs.
BUCKETS_512 = [
    (256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768), (384, 640),
    (448, 576), (512, 512), (576, 448), (640, 384), (704, 320), (768, 320), (832, 256),
    (896, 256), (960, 256), (1024, 256),
]  # fmt: skip


def test_bucket_list_by_hand() -> None:
    assert make_bucket_resolutions((512, 512)) == BUCKETS_512


@pytest.mark.parametrize(
    ("size", "bucket"),
    [
        ((512, 512), (512, 512)),  # exact
        ((600, 900), (384, 640)),  # 0.667: 0.6 (err .067) beats 0.778 (err .111)
        ((1200, 800), (640, 384)),  # 1.5: 1.667 (err .167) beats 1.286 (err .214)
        ((2000, 500), (1024, 256)),  # 4.0 exactly
        ((256, 1024), (256, 1024)),  # exact size of a bucket
        ((100, 100), (512, 512)),  # tiny square: upscaled into 512x512
    ],
)
def test_select_bucket_by_hand(size: tuple[int, int], bucket: tuple[int, int]) -> None:
    assert BucketSelector((512, 512)).select(*size) == bucket


def test_bucket_range_is_rounded_to_steps_like_sd_scripts() -> None:
    # sd-scripts rounds min_bucket_reso down and max_bucket_reso up to bucket_reso_steps before
    # it makes the buckets, so 300..1000 gives the buckets of 256..1024.
    assert adjust_bucket_range(300, 1000, 64) == (256, 1024)
    assert adjust_bucket_range(256, 1024, 64) == (256, 1024)
    selector = BucketSelector((512, 512), min_size=300, max_size=1000, steps=64)
    assert selector.predefined == BUCKETS_512
    assert (selector.min_size, selector.max_size) == (256, 1024)


def test_no_upscale_by_hand() -> None:
    sel = BucketSelector((512, 512), no_upscale=True)
    assert sel.select(512, 512) == (512, 512)
    # 600x900 is larger than 512^2: scaled to ~418x627, both roundings give 384x576.
    assert sel.select(600, 900) == (384, 576)
    # small images keep their size, rounded down to multiples of 64
    assert sel.select(300, 200) == (256, 192)


def test_buckets_off_is_one_bucket() -> None:
    sel = BucketSelector((512, 512), enable_bucket=False)
    assert sel.select(900, 300) == (512, 512)


def test_parse_resolution() -> None:
    assert parse_resolution("768") == (768, 768)
    assert parse_resolution("512, 768") == (512, 768)
    assert parse_resolution(512) is None
    assert parse_resolution("512x512") is None


def _sd_scripts_bucket_code() -> dict[str, Any]:
    """make_bucket_resolutions and BucketManager from the checkout's own source (not copied)."""
    np = pytest.importorskip("numpy")
    ns: dict[str, Any] = {}
    # BucketManager moved from library/train_util.py to library/dataset.py at 6721028c.
    for rels, wanted in (
        (("library/model_util.py",), "make_bucket_resolutions"),
        (("library/train_util.py", "library/dataset.py"), "BucketManager"),
    ):
        found = [
            (rel, n)
            for rel in rels
            if (SD_SCRIPTS / rel).is_file()
            for n in ast.parse((SD_SCRIPTS / rel).read_text(encoding="utf-8")).body
            if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == wanted
        ]
        rel, node = found[0]
        ns.update(
            math=math,
            np=np,
            random=random,
            Tuple=typing.Tuple,  # noqa: UP006 - sd-scripts' own annotations
            logger=logging.getLogger("sd-scripts"),
            model_util=types.SimpleNamespace(
                make_bucket_resolutions=ns.get("make_bucket_resolutions")
            ),
        )
        exec(compile(ast.Module(body=[node], type_ignores=[]), rel, "exec"), ns)
    return ns


@pytest.mark.skipif(
    not (SD_SCRIPTS / "library" / "train_util.py").is_file(),
    reason="needs an sd-scripts checkout (SD_SCRIPTS_DIR, or `make sd-scripts`)",
)
@pytest.mark.parametrize(
    ("reso", "lo", "hi", "step"),
    [
        ((512, 512), 256, 1024, 64),
        ((768, 768), 256, 1024, 64),
        ((1024, 1024), 256, 2048, 64),
        ((512, 768), 320, 1536, 32),
        ((640, 640), 256, 1024, 32),
    ],
)
def test_buckets_match_sd_scripts_own_code(
    reso: tuple[int, int], lo: int, hi: int, step: int
) -> None:
    ns = _sd_scripts_bucket_code()
    assert make_bucket_resolutions(reso, lo, hi, step) == ns["make_bucket_resolutions"](
        reso, lo, hi, step
    )
    rng = random.Random(f"{reso}{lo}{hi}{step}")
    sizes = [(rng.randint(64, 3000), rng.randint(64, 3000)) for _ in range(400)]
    sizes += [(w, h) for w, h in make_bucket_resolutions(reso, lo, hi, step)]
    for no_upscale in (False, True):
        manager = ns["BucketManager"](no_upscale, reso, lo, hi, step)
        if not no_upscale:
            manager.make_buckets()
        mine = BucketSelector(reso, no_upscale=no_upscale, min_size=lo, max_size=hi, steps=step)
        for w, h in sizes:
            theirs = manager.select_bucket(w, h)[0]
            assert mine.select(w, h) == tuple(theirs), (w, h, no_upscale)


def _image(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), (10, 20, 30)).save(path)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """img/5_a: 5 square, 3 portrait 600x900, 2 landscape 1200x800, 1 wide 2000x500;
    img/3_b: 2 square, 1 landscape 900x600; plus folders sd-scripts skips."""
    img = tmp_path / "img"
    n = 0
    for folder, sizes in (
        ("5_a", [(512, 512)] * 4 + [(1024, 1024)] + [(600, 900)] * 3 + [(1200, 800)] * 2),
        ("3_b", [(512, 512)] * 2 + [(900, 600)]),
        ("skip", [(512, 512)] * 2),
        ("0_zero", [(512, 512)]),
    ):
        for w, h in sizes:
            ext = ("png", "jpg", "webp")[n % 3]
            _image(img / folder / f"i{n:03d}.{ext}", w, h)
            n += 1
    _image(img / "5_a" / "wide.png", 2000, 500)
    (img / "5_a" / "notes.txt").write_text("not an image", encoding="utf-8")
    (img / "5_a" / "upper.Png").write_bytes(b"")  # sd-scripts' glob does not match .Png
    (img / "5_a" / "._i000.png").write_bytes(b"")  # macOS AppleDouble: glob's * skips it
    return img


def _args(img: Path, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "train_data_dir": str(img),
        "resolution": "512,512",
        "enable_bucket": True,
        "train_batch_size": 4,
        "max_train_epochs": 15,
        "save_every_n_epochs": 1,
        "output_name": "yh",
        "network_dim": 16,
        "lr_warmup_steps": 0.05,
    }
    base.update(extra)
    return base


def test_plan_by_hand(dataset: Path) -> None:
    plan = count_steps(_args(dataset))
    assert [(f.name, f.repeats, f.images, f.skipped) for f in plan.folders] == [
        ("0_zero", 0, 1, "repeats 0"),
        ("3_b", 3, 3, ""),
        ("5_a", 5, 11, ""),
        ("skip", 0, 2, "no leading <repeats>_"),
    ]
    # 512x512: a 5 x 5 + b 2 x 3 = 31; 384x640: a 3 x 5 = 15; 640x384: a 2 x 5 + b 1 x 3 = 13;
    # 1024x256: a 1 x 5 = 5. Batches of 4: 8 + 4 + 4 + 2 = 18 (naive 64 / 4 = 16).
    assert [(b.width, b.height, b.images, b.with_repeats, b.batches) for b in plan.buckets] == [
        (384, 640, 3, 15, 4),
        (512, 512, 7, 31, 8),
        (640, 384, 3, 13, 4),
        (1024, 256, 1, 5, 2),
    ]
    assert (plan.train_images, plan.train_images_with_repeats) == (14, 64)
    assert (plan.batches_per_epoch, plan.steps_per_epoch, plan.epochs) == (18, 18, 15)
    assert plan.total_steps == 270
    assert plan.warmup_steps == 13  # int(0.05 * 270)
    assert plan.lora_stems == [f"yh-{e:06d}" for e in range(1, 15)] + ["yh"]
    assert plan.warnings == []


@pytest.mark.parametrize(
    ("batch", "accum", "gpus", "batches", "steps"),
    [
        (1, 1, 1, 64, 64),
        (4, 1, 1, 18, 18),
        (8, 1, 1, 9, 9),  # 4 + 2 + 2 + 1
        (4, 4, 1, 18, 5),  # ceil(18 / 4)
        (4, 1, 2, 18, 9),  # ceil(18 / 2)
        (4, 4, 2, 18, 3),  # ceil(18 / 2 / 4) = ceil(2.25)
        (3, 2, 1, 23, 12),  # 11 + 5 + 5 + 2 = 23; ceil(23 / 2)
    ],
)
def test_batches_and_steps(
    dataset: Path, batch: int, accum: int, gpus: int, batches: int, steps: int
) -> None:
    plan = count_steps(
        _args(dataset, train_batch_size=batch, gradient_accumulation_steps=accum),
        num_processes=gpus,
    )
    assert (plan.batches_per_epoch, plan.steps_per_epoch) == (batches, steps)
    assert plan.total_steps == 15 * steps
    assert plan.warmup_steps == int(0.05 * 15 * steps * gpus)


def test_buckets_off_and_other_resolution(dataset: Path) -> None:
    off = count_steps(_args(dataset, enable_bucket=False))
    assert [(b.width, b.height, b.with_repeats, b.batches) for b in off.buckets] == [
        (512, 512, 64, 16)
    ]
    # 768x768: 600x900 -> 640x896, 1200x800 and 900x600 -> 896x640, 2000x500 -> 1024x256
    big = count_steps(_args(dataset, resolution="768,768"))
    assert [(b.width, b.height, b.with_repeats) for b in big.buckets] == [
        (640, 896, 15),
        (768, 768, 31),
        (896, 640, 13),
        (1024, 256, 5),
    ]


def test_steps_warmup_and_names_variants(dataset: Path) -> None:
    steps_only = count_steps(_args(dataset, max_train_epochs=None, max_train_steps=100))
    assert (steps_only.total_steps, steps_only.epochs) == (100, 6)  # ceil(100 / 18)
    default = count_steps({k: v for k, v in _args(dataset).items() if k != "max_train_epochs"})
    assert default.total_steps == 1600
    int_warmup = count_steps(_args(dataset, lr_warmup_steps=40))
    assert int_warmup.warmup_steps == 40
    every = count_steps(_args(dataset, max_train_epochs=5, save_every_n_epochs=2))
    assert every.lora_stems == ["yh-000002", "yh-000004", "yh"]
    unnamed = count_steps(_args(dataset, max_train_epochs=3, output_name=None))
    assert unnamed.lora_stems == ["epoch-000001", "epoch-000002", "last"]


def test_regularisation_images_are_reweighted(tmp_path: Path) -> None:
    img = tmp_path / "img"
    for i in range(3):
        _image(img / "2_t" / f"t{i}.png", 512, 512)
    reg = tmp_path / "reg"
    for i in range(4):
        _image(reg / "1_man" / f"r{i}.png", 512, 512)
    # 6 training images with repeats; 4 reg images, then repeats +1 for r0 and r1 -> 6.
    plan = count_steps(_args(img, reg_data_dir=str(reg)))
    assert [(b.images, b.with_repeats, b.batches) for b in plan.buckets] == [(7, 12, 3)]
    # 10 reg images for 6 training ones: sd-scripts' loop registers r0..r5 only (n reaches 6).
    for i in range(4, 10):
        _image(reg / "1_man" / f"r{i}.png", 1200, 800)
    plan = count_steps(_args(img, reg_data_dir=str(reg), train_batch_size=1))
    assert [(b.width, b.height, b.with_repeats) for b in plan.buckets] == [
        (512, 512, 10),
        (640, 384, 2),
    ]
    assert plan.reg_images == 10


def test_warnings(tmp_path: Path) -> None:
    img = tmp_path / "img"
    _image(img / "1_x" / "small.png", 200, 200)
    plan = count_steps(_args(img, max_train_epochs=1))
    assert plan.warnings == [
        "total steps 1 is fewer than 100: the LoRA may learn little",
        "1 image is smaller than its bucket and will be upscaled (soft detail): "
        "small.png 200x200 -> 512x512",
    ]
    many = count_steps(_args(img, max_train_epochs=20_000))
    assert many.warnings[0] == "total steps 20000 is more than 10,000: a very long run"


def test_lora_size_estimate() -> None:
    # SDXL rank 16 with both text encoders, fp32 (save_precision unset, no mixed precision):
    # 16 x (2,659,840 + 903,168) weights + 986 alphas, 4 bytes each, plus the header.
    full = lora_file_bytes("sdxl", 16, {})
    assert full == (16 * (2_659_840 + 903_168) + 986) * 4 + 986 * 330 + 16 * 1024
    assert 220e6 < full < 235e6
    unet_fp16 = lora_file_bytes("sdxl", 16, {"network_train_unet_only": True,
                                             "save_precision": "fp16"})  # fmt: skip
    assert 85e6 < unet_fp16 < 90e6
    assert lora_file_bytes("sd1", 32, {"save_precision": "fp16"}) < 40e6


def test_disk_estimate(dataset: Path) -> None:
    plan = count_steps(_args(dataset, max_train_epochs=3))
    assert plan.disk_bytes == 3 * plan.lora_file_bytes
    cached = count_steps(_args(dataset, max_train_epochs=3, cache_latents_to_disk=True))
    latents = 16 * (48 * 80 * 3 + 64 * 64 * 7 + 80 * 48 * 3 + 128 * 32 * 1)
    assert cached.disk_bytes == 3 * plan.lora_file_bytes + latents


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        count_steps({"train_data_dir": str(tmp_path / "nope"), "resolution": "512"})
    assert info.value.message == f"cannot plan: train_data_dir {tmp_path / 'nope'} is not a folder"
    with pytest.raises(ConfigError) as cinfo:
        count_steps({"train_data_dir": str(tmp_path), "resolution": 512})
    assert cinfo.value.message == ('cannot plan: resolution 512 is not a string like "512,512"')
    with pytest.raises(ConfigError) as cinfo:
        count_steps({"dataset_config": "d.toml"})
    assert cinfo.value.message == (
        "cannot plan: the config uses dataset_config, and plan reads train_data_dir"
    )


@pytest.mark.parametrize("ext", ["png", "jpeg", "webp", "bmp", "gif"])
@pytest.mark.parametrize("size", [(1, 1), (513, 77), (3000, 2001)])
def test_image_size_from_headers(tmp_path: Path, ext: str, size: tuple[int, int]) -> None:
    path = tmp_path / f"x.{ext}"
    Image.new("RGB", size, (1, 2, 3)).save(path, lossless=True) if ext == "webp" else Image.new(
        "RGB", size
    ).save(path)
    assert image_size(path) == size


def test_image_size_lossy_webp_progressive_jpeg_and_exif(tmp_path: Path) -> None:
    lossy = tmp_path / "l.webp"
    Image.new("RGB", (300, 200)).save(lossy, quality=80)
    assert image_size(lossy) == (300, 200)
    alpha = tmp_path / "a.webp"
    Image.new("RGBA", (301, 199)).save(alpha, quality=80)  # VP8X container
    assert image_size(alpha) == (301, 199)
    prog = tmp_path / "p.jpg"
    Image.new("RGB", (640, 480)).save(prog, progressive=True)
    assert image_size(prog) == (640, 480)
    rotated = tmp_path / "r.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: sd-scripts (imagesize) ignores it, so do we
    Image.new("RGB", (640, 480)).save(rotated, exif=exif)
    assert image_size(rotated) == (640, 480)


def test_image_size_unreadable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageFormatError) as info:
        image_size(bad)
    assert info.value.message == f"cannot read the size of {bad}: not a readable image"


def test_plan_file_relative_paths_and_cli(
    dataset: Path, tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Relative paths are read from the current folder, as sd-scripts reads them.
    config = tmp_path / "configs" / "config.toml"
    config.parent.mkdir()
    monkeypatch.chdir(tmp_path)
    config.write_text(
        '[dataset]\ntrain_data_dir = "img"\nresolution = "512,512"\nenable_bucket = true\n'
        "[training]\ntrain_batch_size = 4\nmax_train_epochs = 2\nsave_every_n_epochs = 1\n"
        'output_name = "yh"\nnetwork_dim = 16\n',
        encoding="utf-8",
    )
    assert count_file(config).total_steps == 36
    result = runner.invoke(cli, ["plan", str(config), "--json"], catch_exceptions=False)
    data = json.loads(result.output)
    assert (data["steps_per_epoch"], data["lora_stems"]) == (18, ["yh-000001", "yh"])
    result = runner.invoke(cli, ["plan", str(config), "--gpus", "2"], catch_exceptions=False)
    lines = result.output.splitlines()
    assert "steps per epoch:   9" in lines
    assert "LoRA files (2): yh-000001, yh" in lines
    assert "               512x512        7            31        8" in lines
    bad = runner.invoke(cli, ["plan", str(config), "--set", "epochs=3"])
    assert bad.exit_code == 2


SDXL_KEYS = [
    "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
    "model.diffusion_model.label_emb.0.0.weight",
]


def _project(root: Path) -> Path:
    """A prepared project: header-only SDXL checkpoint, the settings, captioned images."""
    from kohya_orchestrator.config.settings_file import write_initial_settings
    from kohya_orchestrator.sdscripts.safetensors_header import write_header_only

    model = root / "models" / "pony.safetensors"
    model.parent.mkdir(parents=True)
    write_header_only(model, {k: {"dtype": "F16", "shape": [4, 4]} for k in SDXL_KEYS}, {})
    dest = root / "proj"
    concept = dest / "img" / "7_yumoto_hakone"
    for i, (w, h) in enumerate([(512, 512)] * 3 + [(512, 768)] * 2):
        _image(concept / f"yumoto_hakone_{i}.png", w, h)
        (concept / f"yumoto_hakone_{i}.txt").write_text("yumoto_hakone, glasses\n")
    (dest / "model").mkdir()
    (dest / "log").mkdir()
    write_initial_settings(
        Layout(dest),
        name="yumoto_hakone",
        trigger="yumoto_hakone",
        images=str(root / "images"),
        model=str(model),
        repeats=7,
    )
    return dest


def test_plan_project_uses_the_rendered_settings(tmp_path: Path, runner: CliRunner) -> None:
    from kohya_orchestrator.train.steps import count_project

    dest = _project(tmp_path)
    plan = count_project(dest)
    # Workflow defaults: batch 4, 15 epochs, save every epoch, 512,512 with buckets.
    # 512x512: 3 x 7 = 21 -> 6 batches; 512x768 (0.667) -> 384x640: 2 x 7 = 14 -> 4 batches.
    assert [(b.width, b.height, b.with_repeats, b.batches) for b in plan.buckets] == [
        (384, 640, 14, 4),
        (512, 512, 21, 6),
    ]
    assert (plan.steps_per_epoch, plan.epochs, plan.total_steps) == (10, 15, 150)
    assert plan.warmup_steps == int(0.05 * 150)
    assert plan.lora_stems[0] == "yumoto_hakone-000001"
    assert plan.lora_stems[-1] == "yumoto_hakone"
    assert len(plan.lora_stems) == 15
    smaller = count_project(dest, ["batch_size=2"], num_processes=1)
    assert smaller.batches_per_epoch == 11 + 7
    result = runner.invoke(cli, ["plan", str(dest), "--set", "epochs=3"], catch_exceptions=False)
    assert "LoRA files (3): yumoto_hakone-000001, yumoto_hakone-000002, yumoto_hakone" in (
        result.output.splitlines()
    )


def test_plan_project_refuses_a_config_with_lint_errors(tmp_path: Path, runner: CliRunner) -> None:
    # `config` would refuse to write this config: `plan` must not plan it as if it could run.
    dest = _project(tmp_path)
    result = runner.invoke(cli, ["plan", str(dest), "--set", "optimizer=Nope"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: The rendered config has errors; there is nothing to plan:\n"
        "  - 'optimizer_type' = \"Nope\" is not an optimizer sd-scripts knows: it stops with an "
        "AttributeError after loading the model\n"
        '    hint: use "AdamW" or a module.Class path\n'
        "    (setting 'optimizer', from --set)\n"
        "  hint: Fix the settings (kohya-orch.toml or --set) or the template.\n"
    )


def test_plan_warns_about_buckets_off_and_long_warmup(dataset: Path) -> None:
    # not 512x512: 1024x1024, 3 x 600x900, 2 x 1200x800, 2000x500 in 5_a; 900x600 in 3_b
    plan = count_steps(_args(dataset, enable_bucket=False, lr_warmup_steps=500))
    assert plan.warnings == [
        "buckets are off and 8 images are not 512x512: sd-scripts fails after loading the model",
        "warmup steps 500 >= total steps 240: the learning rate never reaches its value",
    ]


def test_long_warmup_is_compared_in_scheduler_steps_with_several_gpus(dataset: Path) -> None:
    # 2 processes: 135 optimizer steps, and the scheduler steps twice per optimizer step (270).
    # A warmup of 250 scheduler steps ends before the run does: no warning (it was compared
    # with 135 before).
    ok = count_steps(_args(dataset, lr_warmup_steps=250), num_processes=2)
    assert ok.total_steps == 135
    assert [w for w in ok.warnings if "warmup" in w] == []
    long = count_steps(_args(dataset, lr_warmup_steps=300), num_processes=2)
    assert [w for w in long.warnings if "warmup" in w] == [
        "warmup steps 300 >= total steps 270 (135 x 2 processes): the learning rate never "
        "reaches its value"
    ]


def test_plan_folder_with_only_a_config_and_header_script(dataset: Path, runner: CliRunner) -> None:
    dest = dataset.parent
    (dest / "config.toml").write_text(
        "# SD 1.x / 2.x LoRA training config for sd-scripts' train_network.py (--config_file).\n"
        f'train_data_dir = "{dataset}"\nresolution = "512,512"\nenable_bucket = true\n'
        "train_batch_size = 4\nmax_train_epochs = 1\nnetwork_dim = 16\n"
        'save_precision = "fp16"\noutput_name = "x"\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["plan", str(dest), "--json"], catch_exceptions=False)
    data = json.loads(result.output)
    assert (data["family"], data["total_steps"]) == ("sd1", 18)
    assert data["lora_file_bytes"] == lora_file_bytes("sd1", 16, {"save_precision": "fp16"})


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk claiming `width` x `height`, and no pixels."""
    import struct
    import zlib

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))


def _gif_claiming(width: int, height: int) -> bytes:
    """A GIF whose logical screen claims `width` x `height` (one 1x1 frame)."""
    import struct

    return (
        b"GIF89a"
        + struct.pack("<HH", width, height)
        + b"\x00\x00\x00\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00\x3b"
    )


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, fail the test if any image's pixels are decoded."""

    def load(self: Image.Image) -> None:
        raise AssertionError(f"pixels decoded: {self}")

    monkeypatch.setattr(Image.Image, "load", load)


def test_bomb_sized_headers_are_read_not_decoded_and_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = tmp_path / "img"
    _image(img / "1_x" / "ok.png", 512, 512)
    (img / "1_x" / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    # Between Pillow's limit and twice it Pillow only warns (so does sd-scripts): no bomb.
    (img / "1_x" / "big.png").write_bytes(_gif_claiming(10_000, 10_000))
    _forbid_decoding(monkeypatch)
    assert image_size(img / "1_x" / "bomb.png") == (100_000, 100_000)
    assert image_size(img / "1_x" / "big.png") == (10_000, 10_000)
    plan = count_steps(_args(img, max_train_epochs=100))
    assert plan.train_images == 3
    assert plan.warnings == [
        "1 image claims more than 178,956,970 pixels, which Pillow refuses to open: "
        "sd-scripts stops when it loads it; remove or re-save bomb.png"
    ]


def test_bomb_pillow_refuses_is_an_error_naming_the_file(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = tmp_path / "img"
    _image(img / "1_x" / "ok.png", 512, 512)
    bomb = img / "1_x" / "bomb.png"
    bomb.write_bytes(_gif_claiming(65_535, 65_535))  # a GIF named .png: Pillow reads it
    _forbid_decoding(monkeypatch)
    with pytest.raises(ImageFormatError) as info:
        count_steps(_args(img))
    assert info.value.render() == (
        f"cannot read the size of {bomb}: it claims more than 178,956,970 pixels, which "
        "Pillow refuses to open (a decompression bomb)\n"
        "  hint: sd-scripts cannot load it either: remove the file from the training folder "
        "or re-save it smaller"
    )
    config = tmp_path / "c.toml"
    config.write_text(f'train_data_dir = "{img}"\nresolution = "512,512"\nenable_bucket = true\n')
    result = runner.invoke(cli, ["plan", str(config)])
    assert result.exit_code == 1
    assert result.output == f"Error: {info.value.render()}\n"
