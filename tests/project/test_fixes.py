"""`prepare`'s corrected copies (project/fixes.py, dataset/imagefix.py): real files, pixel checks.

A rotated JPEG, an RGBA PNG, a 16-bit PNG and an animated WebP are prepared into upright
8-bit RGB copies, compared pixel by pixel with what `ImageOps.exif_transpose` and a flatten
on white give; the sources are byte-identical afterwards; images that need nothing stay links.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.imagefix import encode_png, fix_image
from kohya_orchestrator.project.prepare import MANIFEST_NAME
from tests.project.test_prepare import checkpoint, snapshot

SIZE = (96, 64)


def _pattern(mode: str = "RGB") -> Image.Image:
    y, x = np.mgrid[0 : SIZE[1], 0 : SIZE[0]]
    rgb = np.stack([x * 255 // SIZE[0], y * 255 // SIZE[1], (x + y) % 256], -1).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        alpha = ((x // 8 + y // 8) % 2 * 255).astype(np.uint8)
        img.putalpha(Image.fromarray(alpha, "L"))
    return img


def make_sources(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    _pattern().save(folder / "rotated.jpg", quality=95, exif=exif.tobytes())
    _pattern("RGBA").save(folder / "clear.png")
    deep = (np.asarray(_pattern().convert("L"), dtype=np.uint16) * 257 + 100).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")
    frames = [_pattern(), Image.new("RGB", SIZE, "red"), Image.new("RGB", SIZE, "blue")]
    frames[0].save(folder / "moving.webp", save_all=True, append_images=frames[1:], lossless=True)
    _pattern().save(folder / "plain.png")
    for name in ("rotated", "clear", "deep", "moving", "plain"):
        (folder / f"{name}.txt").write_text(f"hero, {name}\n")
    return {p.stem: p for p in folder.iterdir() if p.suffix != ".txt"}


def _prepare(tmp_path: Path, *extra: str) -> tuple[str, Path]:
    model = checkpoint(tmp_path / "m.safetensors")
    dest = tmp_path / "dest"
    argv = ["prepare", "hero", "--images", str(tmp_path / "src"), "--dest", str(dest)]
    result = CliRunner().invoke(cli, [*argv, "--model", str(model), *extra], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output, dest / "img" / "7_hero"


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img, dtype=np.int16)


def test_corrected_copies_match_exif_transpose(tmp_path: Path) -> None:
    sources = make_sources(tmp_path / "src")
    before = snapshot(tmp_path / "src")
    output, img = _prepare(tmp_path)
    assert snapshot(tmp_path / "src") == before  # the sources never change
    assert (
        "  4 images sd-scripts would misread get a corrected copy instead of a link (the "
        "sources are unchanged):\n"
        "    clear.png: has transparency (RGBA): sd-scripts' RGB convert drops it, so "
        "transparent pixels show whatever colour they hold (often black) -> flattened on white\n"
        "    deep.png: is 16-bit: sd-scripts' 8-bit RGB convert clips it (it comes out mostly "
        "white) -> 8-bit\n"
        "    moving.webp: is animated (3 frames): sd-scripts trains the first frame only -> "
        "first frame only\n"
        "    rotated.jpg: EXIF orientation 6: sd-scripts ignores it, so it trains sideways and "
        "picks the bucket from the unrotated 96x64 -> upright\n"
    ) in output
    # Rotated JPEG: upright, as exif_transpose turns it (a JPEG copy: within JPEG noise).
    with Image.open(sources["rotated"]) as src:
        upright = np.asarray(ImageOps.exif_transpose(src).convert("RGB"), dtype=np.int16)
    copy = _pixels(img / "rotated.jpg")
    assert copy.shape == (96, 64, 3)
    # plan reads headers: it buckets the copy by its upright size.
    from kohya_orchestrator.dataset.imagesize import image_size

    assert image_size(img / "rotated.jpg") == (64, 96)
    assert np.abs(copy - upright).mean() < 2.0
    # RGBA PNG: flattened on white, exactly.
    with Image.open(sources["clear"]) as src:
        flat = Image.new("RGB", SIZE, "white")
        flat.paste(src, mask=src.getchannel("A"))
    assert np.array_equal(_pixels(img / "clear.png"), np.asarray(flat, dtype=np.int16))
    # 16-bit grey: scaled to 8 bits (not clipped to white as sd-scripts' convert does).
    with Image.open(sources["deep"]) as src:
        eight = np.round(np.asarray(src, dtype=np.float64) / 257)
    deep = _pixels(img / "deep.png")
    assert np.array_equal(deep[..., 0], eight.astype(np.int16))
    assert deep.mean() < 200
    # Animated WebP: the first frame, as a PNG.
    assert not (img / "moving.webp").exists()
    assert np.array_equal(_pixels(img / "moving.png"), np.asarray(_pattern(), dtype=np.int16))
    # Images that need nothing stay links; every copy carries its caption, embedded too.
    assert os.readlink(img / "plain.png") == str(sources["plain"])
    assert os.readlink(img / "rotated.txt") == str(tmp_path / "src" / "rotated.txt")
    for name in ("clear.png", "deep.png", "moving.png", "rotated.jpg"):
        assert not (img / name).is_symlink()
        from kohya_orchestrator.dataset.metadata import read_embedded

        caption = read_embedded((img / name).read_bytes()).caption
        assert caption == f"hero, {Path(name).stem}"


def test_resync_keeps_copies_and_remakes_on_change(tmp_path: Path) -> None:
    make_sources(tmp_path / "src")
    _prepare(tmp_path)
    dest = tmp_path / "dest"
    made = snapshot(dest / "img")
    output, img = _prepare(tmp_path)
    assert "nothing to change: all 10 files are in place" in output
    assert snapshot(dest / "img") == made
    (tmp_path / "src" / "clear.txt").write_text("hero, changed\n")
    output, img = _prepare(tmp_path)
    assert "0 added, 1 updated, 0 removed, 9 unchanged" in output
    from kohya_orchestrator.dataset.metadata import read_embedded

    assert read_embedded((img / "clear.png").read_bytes()).caption == "hero, changed"
    output, img = _prepare(tmp_path, "--background", "black")
    assert "0 added, 1 updated" in output  # the one with transparency
    assert _pixels(img / "clear.png")[0, 0].tolist() == [0, 0, 0]
    records = json.loads((dest / MANIFEST_NAME).read_text())["files"]
    assert records["img/7_hero/clear.png"]["mode"] == "fixed"


def test_no_fix_images_links_and_warns(tmp_path: Path) -> None:
    make_sources(tmp_path / "src")
    Image.new("RGB", (8, 8)).save(tmp_path / "src" / "still.gif")
    output, img = _prepare(tmp_path, "--no-fix-images")
    assert all((img / n).is_symlink() for n in os.listdir(img))
    assert not (img / "still.gif").exists()
    assert (
        "warning: rotated.jpg: EXIF orientation 6: sd-scripts ignores it, so it trains sideways "
        "and picks the bucket from the unrotated 96x64 (--no-fix-images: linked as it is)\n"
    ) in output
    assert (
        "warning: still.gif: sd-scripts does not read .gif files: left out of training "
        "(--no-fix-images)\n"
    ) in output


def test_bad_background(tmp_path: Path) -> None:
    make_sources(tmp_path / "src")
    model = checkpoint(tmp_path / "m.safetensors")
    argv = ["prepare", "hero", "--images", str(tmp_path / "src"), "--dest", str(tmp_path / "d")]
    result = CliRunner().invoke(cli, [*argv, "--model", str(model), "--background", "pink"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: --background: 'pink' is not a colour: use white, black, gray or #rrggbb.\n"
        "  hint: e.g. --background white or #202020\n"
    )
    assert not (tmp_path / "d").exists()


def _heic(path: Path) -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    _pattern().save(path, "HEIF", quality=95)
    return True


def test_heic_converted_or_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _pattern().save(src / "plain.png")
    if not _heic(src / "phone.heic"):
        (src / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)
    else:
        output, img = _prepare(tmp_path)
        assert (
            "    phone.heic: HEIF is not an image sd-scripts reads (it globs .png .jpg .jpeg "
            ".webp .bmp): it is left out of training -> converted to PNG\n"
        ) in output
        copy = _pixels(img / "phone.png")
        assert np.abs(copy - np.asarray(_pattern(), dtype=np.int16)).mean() < 4
        import shutil

        shutil.rmtree(tmp_path / "dest")
        import kohya_orchestrator.project.fixes as fixes

        monkeypatch.setattr(fixes, "_has_heif", lambda: False)
    model = checkpoint(tmp_path / "m.safetensors")
    argv = ["prepare", "hero", "--images", str(src), "--dest", str(tmp_path / "dest")]
    result = CliRunner().invoke(cli, [*argv, "--model", str(model)])
    assert result.exit_code == 1
    assert result.output == (
        "Error: 1 HEIC/HEIF image(s) need pillow-heif to be converted for sd-scripts, and it "
        "is not installed: phone.heic; nothing was changed.\n"
        "  hint: pip install 'kohya-orchestrator[heif]' (or pip install pillow-heif); or "
        "convert them to PNG/JPEG yourself, or move them out of the folder.\n"
    )
    assert not (tmp_path / "dest").exists()


def test_encode_png_round_trips() -> None:
    img = _pattern()
    data = encode_png(img)
    with Image.open(io.BytesIO(data)) as back:
        assert np.array_equal(np.asarray(back), np.asarray(img))


def test_fix_image_cmyk_and_float(tmp_path: Path) -> None:
    _pattern().convert("CMYK").save(tmp_path / "c.jpg")
    fixed = fix_image(tmp_path / "c.jpg", None)
    assert (fixed.format, fixed.done) == ("jpeg", ("CMYK to RGB (no colour profile)",))
    arr = np.linspace(0, 1, SIZE[0] * SIZE[1], dtype=np.float32).reshape(SIZE[1], SIZE[0])
    Image.fromarray(arr, "F").save(tmp_path / "f.tiff")
    fixed = fix_image(tmp_path / "f.tiff", "hero")
    assert fixed.done == ("float to 8-bit",)
    with Image.open(io.BytesIO(fixed.data)) as back:
        assert back.mode == "RGB"
        assert back.getpixel((SIZE[0] - 1, SIZE[1] - 1)) == (255, 255, 255)
