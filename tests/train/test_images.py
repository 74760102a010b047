"""train/images.py and dataset/imagecheck.misread_warnings: plan's and doctor's image lines."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from kohya_orchestrator.dataset.imagecheck import misread_warnings
from kohya_orchestrator.train.images import upscaled_warning


def test_upscaled_names_files() -> None:
    assert upscaled_warning([]) == []
    assert upscaled_warning([(Path("a.png"), (300, 200), (768, 512))]) == [
        "1 image is smaller than its bucket and will be upscaled (soft detail): "
        "a.png 300x200 -> 768x512"
    ]
    many = [(Path(f"{i}.png"), (10, 10), (256, 256)) for i in range(7)]
    assert upscaled_warning(many)[0].endswith("4.png 10x10 -> 256x256 (and 2 more)")


def test_misread_lines(tmp_path: Path) -> None:
    Image.new("RGBA", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"broken")
    lines = misread_warnings(sorted(tmp_path.iterdir()), hint="prepare fixes them")
    assert lines == [
        "1 image sd-scripts would misread; prepare fixes them",
        "a.png: has transparency (RGBA): sd-scripts' RGB convert drops it, so transparent "
        "pixels show whatever colour they hold (often black)",
    ]
