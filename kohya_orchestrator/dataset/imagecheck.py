"""Images sd-scripts would misread, found from the file header alone (no pixel decoding).

sd-scripts loads every image with `Image.open(p).convert("RGB")` (library/utils.py
load_image at 6721028c) and never applies EXIF orientation; bucket sizes come from the
header (`imagesize`). So, per image (../shared/SD_SCRIPTS.md, "Images as sd-scripts reads
them"):
- EXIF orientation 2-8: trained mirrored or sideways, bucketed from the unrotated size;
- transparency (RGBA, LA, PA, P or L/RGB with tRNS): dropped; transparent pixels show
  whatever colour they hold;
- 16-bit, 32-bit integer and float modes: clipped by the convert (mostly white);
- CMYK: converted without the colour profile (colours shift);
- animated WebP/GIF/PNG: the first frame only;
- HEIC/HEIF/AVIF/GIF/TIFF: not globbed by sd-scripts at all (left out of training).

`inspect_image` reads PNG, JPEG and WebP headers itself (a few hundred bytes, cheap enough
to run on every image of a `prepare`); other formats go through Pillow's lazy open, which
also reads only the header. `image_issues` is pure: facts in, issues out.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kohya_orchestrator.dataset.scan import CONVERTIBLE_SUFFIXES
from kohya_orchestrator.errors import ImageFormatError, OrchError
from kohya_orchestrator.fsutil import open_regular

NEEDS_HEIF = (".heic", ".heif")
# Images named in a misread warning before "(and N more)".
MISREAD_SHOWN = 5

# EXIF orientation -> what it means for a picture trained as stored.
ORIENTATIONS = {
    2: "mirrored",
    3: "upside down",
    4: "upside down and mirrored",
    5: "sideways and mirrored",
    6: "sideways",
    7: "sideways and mirrored",
    8: "sideways",
}


@dataclass(frozen=True)
class ImageFacts:
    """What the header says: format, stored size, orientation, mode, frames."""

    format: str
    size: tuple[int, int]
    orientation: int = 1
    mode: str = "RGB"
    transparency: bool = False
    frames: int = 1

    @property
    def upright_size(self) -> tuple[int, int]:
        """The size once turned upright (orientations 5-8 swap width and height)."""
        w, h = self.size
        return (h, w) if self.orientation in (5, 6, 7, 8) else (w, h)


@dataclass(frozen=True)
class ImageIssue:
    """One way sd-scripts would misread an image: a key and the sentence saying what it does."""

    kind: str  # orientation, transparency, depth, cmyk, animated, format
    message: str


def needs_conversion(path: Path) -> bool:
    """True for a file sd-scripts does not glob that `prepare` converts (HEIC, AVIF...)."""
    return path.suffix.lower() in CONVERTIBLE_SUFFIXES


def image_issues(facts: ImageFacts, suffix: str = "") -> list[ImageIssue]:
    """Every way sd-scripts would misread an image with these facts (pure)."""
    out = []
    if suffix.lower() in CONVERTIBLE_SUFFIXES:
        out.append(
            ImageIssue(
                "format",
                f"{facts.format} is not an image sd-scripts reads (it globs .png .jpg .jpeg "
                ".webp .bmp): it is left out of training",
            )
        )
    if facts.orientation in ORIENTATIONS:
        w, h = facts.size
        out.append(
            ImageIssue(
                "orientation",
                f"EXIF orientation {facts.orientation}: sd-scripts ignores it, so it trains "
                f"{ORIENTATIONS[facts.orientation]} and picks the bucket from the unrotated "
                f"{w}x{h}",
            )
        )
    if facts.transparency:
        out.append(
            ImageIssue(
                "transparency",
                f"has transparency ({facts.mode}): sd-scripts' RGB convert drops it, so "
                "transparent pixels show whatever colour they hold (often black)",
            )
        )
    if facts.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        out.append(
            ImageIssue(
                "depth",
                f"is {_depth_name(facts.mode)}: sd-scripts' 8-bit RGB convert clips it "
                "(it comes out mostly white)",
            )
        )
    if facts.mode == "CMYK":
        out.append(
            ImageIssue(
                "cmyk",
                "is CMYK: sd-scripts converts it to RGB without its colour profile "
                "(the colours shift)",
            )
        )
    if facts.frames > 1:
        out.append(
            ImageIssue(
                "animated",
                f"is animated ({facts.frames} frames): sd-scripts trains the first frame only",
            )
        )
    return out


def misread_warnings(images: Iterable[Path], *, hint: str) -> list[str]:
    """A head line (the count and `hint`), then one line per image sd-scripts would misread
    (the first MISREAD_SHOWN)."""
    lines = []
    for image in images:
        try:
            issues = image_issues(inspect_image(image), image.suffix)
        except OrchError:
            continue  # unreadable: reported where sizes are read
        if issues:
            lines.append(f"{image.name}: " + "; ".join(i.message for i in issues))
    if not lines:
        return []
    more = f" (and {len(lines) - MISREAD_SHOWN} more)" if len(lines) > MISREAD_SHOWN else ""
    head = (
        f"{len(lines)} image{'s' if len(lines) != 1 else ''} sd-scripts would misread{more}; {hint}"
    )
    return [head, *lines[:MISREAD_SHOWN]]


def _depth_name(mode: str) -> str:
    return "32-bit float" if mode == "F" else "32-bit" if mode == "I" else "16-bit"


def inspect_image(path: Path) -> ImageFacts:
    """The facts of the image at `path`, from its header; ImageFormatError if unreadable."""
    try:
        with os.fdopen(open_regular(path), "rb") as fh:
            head = fh.read(64)
            facts = None
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                facts = _png(fh)
            elif head[:2] == b"\xff\xd8":
                facts = _jpeg(fh)
            elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                facts = _webp(fh)
    except OSError as exc:
        raise ImageFormatError(f"cannot read {path}: {exc.strerror}") from exc
    except (struct.error, ValueError, IndexError):
        facts = None
    return facts if facts is not None else _pillow_facts(path)


def _png(fh: BinaryIO) -> ImageFacts | None:
    fh.seek(8)
    size = (0, 0)
    depth = color = 0
    transparency = False
    frames = 1
    orientation = 1
    while True:
        header = fh.read(8)
        if len(header) < 8:
            break  # no image data: what the header says is all sd-scripts sees too
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IHDR":
            data = fh.read(length)
            w, h, depth, color = struct.unpack(">IIBB", data[:10])
            size = (w, h)
            fh.seek(4, 1)
            continue
        if kind == b"tRNS":
            transparency = True
        elif kind == b"acTL":
            frames = max(1, struct.unpack(">I", fh.read(4))[0])
            fh.seek(length, 1)
            continue
        elif kind == b"eXIf":
            orientation = _tiff_orientation(fh.read(length))
            fh.seek(4, 1)
            continue
        elif kind in (b"IDAT", b"IEND"):
            break
        fh.seek(length + 4, 1)
    if size == (0, 0):
        return None
    transparency = transparency or color in (4, 6)
    base = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}.get(color, "RGB")
    # Pillow reads 16-bit colour as 8 bits (the high bytes: right); only 16-bit grey stays
    # 16-bit (I;16), which the RGB convert clips.
    mode = "I;16" if depth == 16 and base == "L" else base
    return ImageFacts("PNG", size, orientation, mode, transparency, frames)


# JPEG start-of-frame markers (all SOFn except DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(fh: BinaryIO) -> ImageFacts | None:
    fh.seek(2)
    orientation = 1
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code == 0xFF:
            fh.seek(-1, 1)
            continue
        if code in (0xD8, 0x01) or 0xD0 <= code <= 0xD7:
            continue
        if code in (0xD9, 0xDA):
            return None
        length = struct.unpack(">H", fh.read(2))[0]
        if code == 0xE1:
            data = fh.read(length - 2)
            if data[:6] == b"Exif\x00\x00":
                orientation = _tiff_orientation(data[6:])
            continue
        if code in _SOF:
            data = fh.read(6)
            h, w, components = struct.unpack(">HHB", data[1:6])
            mode = {1: "L", 3: "RGB", 4: "CMYK"}.get(components, "RGB")
            return ImageFacts("JPEG", (w, h), orientation, mode)
        fh.seek(length - 2, 1)


def _webp(fh: BinaryIO) -> ImageFacts | None:
    fh.seek(12)
    size = (0, 0)
    alpha = False
    frames = 0
    orientation = 1
    while True:
        header = fh.read(8)
        if len(header) < 8:
            break
        kind, length = struct.unpack("<4sI", header)
        padded = length + (length & 1)
        if kind == b"VP8X":
            data = fh.read(10)
            alpha = bool(data[0] & 0x10)
            size = (
                int.from_bytes(data[4:7], "little") + 1,
                int.from_bytes(data[7:10], "little") + 1,
            )
            fh.seek(padded - 10, 1)
            continue
        if kind == b"VP8 " and size == (0, 0):
            data = fh.read(10)
            w, h = struct.unpack("<HH", data[6:10])
            size = (w & 0x3FFF, h & 0x3FFF)
            fh.seek(padded - 10, 1)
            continue
        if kind == b"VP8L" and size == (0, 0):
            data = fh.read(5)
            bits = int.from_bytes(data[1:5], "little")
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            alpha = bool((bits >> 28) & 1)
            fh.seek(padded - 5, 1)
            continue
        if kind == b"ANMF":
            frames += 1
        elif kind == b"EXIF":
            data = fh.read(length)
            if data[:6] == b"Exif\x00\x00":
                data = data[6:]
            orientation = _tiff_orientation(data)
            fh.seek(padded - length, 1)
            continue
        fh.seek(padded, 1)
    if size == (0, 0):
        return None
    return ImageFacts("WEBP", size, orientation, "RGBA" if alpha else "RGB", alpha, max(1, frames))


def _tiff_orientation(data: bytes) -> int:
    """EXIF orientation (tag 0x0112 of IFD0) of a TIFF block; 1 when absent or unreadable."""
    try:
        order = "<" if data[:2] == b"II" else ">" if data[:2] == b"MM" else ""
        if not order:
            return 1
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
        for i in range(count):
            entry = data[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:
                value = int(struct.unpack(order + "H", entry[8:10])[0])
                return value if 1 <= value <= 8 else 1
    except struct.error:
        return 1
    return 1


def _pillow_facts(path: Path) -> ImageFacts:
    import warnings

    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() in NEEDS_HEIF:
        register_heif(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                transparency = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
                # Header only: no frame count (GIF counts by decoding) and EXIF only where
                # it sits in the header.
                fmt = str(img.format or path.suffix.lstrip(".").upper())
                orientation = 1
                if fmt in ("TIFF", "HEIF", "AVIF", "MPO", "JPEG"):
                    orientation = int(img.getexif().get(0x0112, 1) or 1)
                return ImageFacts(
                    fmt,
                    (int(img.size[0]), int(img.size[1])),
                    orientation if 1 <= orientation <= 8 else 1,
                    img.mode,
                    transparency,
                )
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageFormatError(
            f"cannot read {path.name}: not a readable image ({exc})",
            hint="re-save it as PNG or JPEG, or move it out of the folder",
        ) from exc


def register_heif(path: Path) -> None:
    """Make Pillow read HEIC/HEIF through pillow-heif; a clear error when it is absent."""
    try:
        import pillow_heif
    except ImportError as exc:
        raise ImageFormatError(
            f"cannot read {path.name}: HEIC/HEIF needs pillow-heif, which is not installed",
            hint="pip install 'kohya-orchestrator[heif]' (or pip install pillow-heif), "
            "or convert it to PNG or JPEG yourself",
        ) from exc
    pillow_heif.register_heif_opener()
