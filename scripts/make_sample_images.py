"""Generate a small, neutral sample dataset with Pillow: mixed formats, shapes, captions."""

from __future__ import annotations

from pathlib import Path

# name, size, colour; names are deliberately messy, as downloaded images are.
_SAMPLES = [
    ("IMG_0001.jpg", (768, 1024), (70, 90, 140)),
    ("IMG_0002.JPG", (1024, 768), (140, 90, 70)),
    ("portrait 3.jpeg", (640, 960), (60, 130, 90)),
    ("scan-10.png", (1024, 1024), (200, 200, 210)),
    ("scan-2.png", (896, 1152), (30, 30, 40)),
    ("wide_shot.webp", (1216, 832), (120, 160, 200)),
    ("closeup.webp", (832, 1216), (230, 180, 150)),
    ("outfit (1).jpg", (1024, 1536), (90, 60, 110)),
]

# Some images arrive with captions already (as after a tagger run).
_CAPTIONS = {
    "IMG_0001": "glasses, black hair, short hair, suit, necktie, looking at viewer",
    "scan-10": "1boy, glasses, smile, upper body",
}


def make_sample_images(folder: Path) -> list[Path]:
    """Write the sample images (and a few .txt captions) into `folder`; return the images."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, size, colour in _SAMPLES:
        img = Image.new("RGB", size, colour)
        draw = ImageDraw.Draw(img)
        w, h = size
        draw.ellipse((w * 0.3, h * 0.15, w * 0.7, h * 0.45), fill=(235, 205, 180))
        draw.rectangle((w * 0.25, h * 0.5, w * 0.75, h * 0.95), fill=(40, 40, 50))
        path = folder / name
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}[path.suffix.lower()]
        img.save(path, fmt, quality=90) if fmt != "PNG" else img.save(path, fmt)
        made.append(path)
        caption = _CAPTIONS.get(path.stem)
        if caption:
            path.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
    return made


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo/images")
    for p in make_sample_images(target):
        print(p)
