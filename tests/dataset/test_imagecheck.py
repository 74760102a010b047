"""dataset/imagecheck.py: what sd-scripts would misread, from the header alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from imagefactory import KINDS, make_image
from PIL import Image

from kohya_orchestrator.dataset.imagecheck import ImageFacts, image_issues, inspect_image

# Each kind -> the issue kinds sd-scripts would hit.
EXPECTED = {
    "jpeg_baseline": [],
    "jpeg_cmyk": ["cmyk"],
    "jpeg_camera": ["orientation"],
    "jpeg_exif_le": ["orientation"],
    "jpeg_mpo": [],
    "png_rgb": [],
    "png_rgba": ["transparency"],
    "png_gray16": ["depth"],
    "png_rgba16": ["transparency"],
    "png_palette": ["transparency"],
    "png_apng": ["animated"],
    "webp_lossy": [],
    "webp_lossless": [],
    "webp_alpha": ["transparency"],
    "webp_animated": ["transparency", "animated"],
    "webp_camera": ["orientation"],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_issues_of_each_kind(tmp_path: Path, kind: str) -> None:
    path = make_image(kind, tmp_path / f"x{KINDS[kind].ext}")
    facts = inspect_image(path)
    assert [i.kind for i in image_issues(facts, path.suffix)] == EXPECTED[kind]
    with Image.open(path) as img:  # the header read agrees with Pillow's
        assert facts.size == img.size
        assert facts.orientation == (img.getexif().get(0x0112) or 1)


def test_messages_say_what_sd_scripts_does() -> None:
    facts = ImageFacts("JPEG", (640, 480), orientation=6)
    assert [i.message for i in image_issues(facts)] == [
        "EXIF orientation 6: sd-scripts ignores it, so it trains sideways and picks the "
        "bucket from the unrotated 640x480"
    ]
    assert facts.upright_size == (480, 640)
    many = ImageFacts("WEBP", (8, 8), mode="RGBA", transparency=True, frames=3)
    assert [i.message for i in image_issues(many)] == [
        "has transparency (RGBA): sd-scripts' RGB convert drops it, so transparent pixels "
        "show whatever colour they hold (often black)",
        "is animated (3 frames): sd-scripts trains the first frame only",
    ]
    assert [i.message for i in image_issues(ImageFacts("PNG", (8, 8), mode="I;16"))] == [
        "is 16-bit: sd-scripts' 8-bit RGB convert clips it (it comes out mostly white)"
    ]
    assert [i.message for i in image_issues(ImageFacts("GIF", (8, 8), mode="P"), ".gif")] == [
        "GIF is not an image sd-scripts reads (it globs .png .jpg .jpeg .webp .bmp): it is "
        "left out of training"
    ]


def test_other_formats_through_pillow(tmp_path: Path) -> None:
    Image.new("RGBA", (30, 20), (0, 0, 0, 0)).save(tmp_path / "a.tiff")
    Image.new("RGB", (30, 20)).save(tmp_path / "b.bmp")
    facts = inspect_image(tmp_path / "a.tiff")
    assert (facts.format, facts.size, facts.transparency) == ("TIFF", (30, 20), True)
    assert image_issues(inspect_image(tmp_path / "b.bmp"), ".bmp") == []


def test_unreadable(tmp_path: Path) -> None:
    from kohya_orchestrator.errors import ImageFormatError

    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(ImageFormatError) as err:
        inspect_image(tmp_path / "x.png")
    assert err.value.message.startswith("cannot read x.png: not a readable image")
