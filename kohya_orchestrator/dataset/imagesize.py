"""Image width and height from the file header only (PNG, JPEG, WebP, BMP), no pixel decoding.

sd-scripts reads sizes the same way (the `imagesize` package, stored size, EXIF orientation
ignored), so bucket assignment here matches its own. Other formats fall back to Pillow's lazy
open, which also reads only the header.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from kohya_orchestrator.errors import ImageFormatError
from kohya_orchestrator.fsutil import open_regular

_HEAD = 64 * 1024
# Pillow's default Image.MAX_IMAGE_PIXELS; above twice that Image.open refuses a file with
# DecompressionBombError, so sd-scripts (which loads every image with Pillow) stops on it.
PILLOW_MAX_PIXELS = 89_478_485
BOMB_PIXELS = 2 * PILLOW_MAX_PIXELS


def is_bomb(size: tuple[int, int]) -> bool:
    """True when an image of this size is one Pillow refuses to open (a decompression bomb)."""
    return size[0] * size[1] > BOMB_PIXELS


def _png(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    header = int.from_bytes(data[14:18], "little")
    if header == 12:
        w, h = struct.unpack("<HH", data[18:22])
        return int(w), int(h)
    w, h = struct.unpack("<ii", data[18:26])
    return int(w), abs(int(h))


# JPEG start-of-frame markers (all SOFn except DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(path: Path, data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    with path.open("rb") as fh:
        fh.seek(2)
        while True:
            byte = fh.read(1)
            while byte and byte != b"\xff":
                byte = fh.read(1)
            while byte == b"\xff":
                byte = fh.read(1)
            if not byte:
                return None
            marker = byte[0]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                continue
            if marker == 0xD9:
                return None
            raw = fh.read(2)
            if len(raw) < 2:
                return None
            length = int.from_bytes(raw, "big")
            if marker in _SOF:
                seg = fh.read(5)
                if len(seg) < 5:
                    return None
                h, w = struct.unpack(">HH", seg[1:5])
                return int(w), int(h)
            fh.seek(length - 2, 1)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the image at `path`, from its header; ImageFormatError if unreadable."""
    path = Path(path)
    try:
        with os.fdopen(open_regular(path), "rb") as fh:
            data = fh.read(32)
        size = _png(data) or _webp(data) or _bmp(data)
        if size is None and data[:2] == b"\xff\xd8":
            size = _jpeg(path, data)
    except OSError as exc:
        raise ImageFormatError(f"cannot read {path}: {exc.strerror}") from exc
    if size is None or size[0] <= 0 or size[1] <= 0:
        size = _pillow_size(path)
    return size


def _pillow_size(path: Path) -> tuple[int, int]:
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        # Lazy open: the header only. Sizes between Pillow's limit and twice it only warn
        # there (and in sd-scripts); the size is all that is wanted here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return int(img.size[0]), int(img.size[1])
    except Image.DecompressionBombError as exc:
        raise ImageFormatError(
            f"cannot read the size of {path}: it claims more than {BOMB_PIXELS:,} pixels, "
            "which Pillow refuses to open (a decompression bomb)",
            hint="sd-scripts cannot load it either: remove the file from the training "
            "folder or re-save it smaller",
        ) from exc
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageFormatError(
            f"cannot read the size of {path}: not a readable image",
            hint="remove the file from the training folder or re-save it",
        ) from exc
