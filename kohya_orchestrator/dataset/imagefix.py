"""Corrected copies of images sd-scripts would misread (imagecheck): decode once, fix, encode.

The copy is what sd-scripts should have seen: the first frame, turned upright
(`ImageOps.exif_transpose`), 16-bit and float values scaled to 8 bits, CMYK converted
through its colour profile when it has one, transparency flattened on a background colour,
8-bit RGB. A JPEG source gives a JPEG copy (quality 95: the source was lossy already);
everything else a PNG. PNGs are written here rather than by Pillow, uncompressed (see
PNG_LEVEL): Pillow's adaptive filtering costs about 10x a decode, and `prepare` makes these
copies inline. The
caption goes in too, through the same lossless embedding `caption` uses. Nothing here
touches the source; the caller writes the bytes atomically.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kohya_orchestrator.dataset.imagecheck import NEEDS_HEIF, register_heif
from kohya_orchestrator.errors import ImageFormatError

if TYPE_CHECKING:
    from PIL import Image

# Named background colours for --background; any #rrggbb works too.
COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128)}
# EXIF orientation -> the transpose that makes it upright (as ImageOps.exif_transpose).
_TRANSPOSE = {2: 0, 3: 3, 4: 1, 5: 5, 6: 4, 7: 6, 8: 2}
# zlib level of the PNG copies: 0 stores the rows uncompressed (3 bytes a pixel). Even
# level 1 costs about 40 ms per 1024x1024 photo-like image, 5x its decode, and `prepare`
# makes these inline; the copies are a few files in DEST, read by the trainer once.
PNG_LEVEL = 0


@dataclass(frozen=True)
class Fixed:
    """A corrected copy: its bytes, the format, and what was done (for messages)."""

    data: bytes
    format: str  # "jpeg" or "png"
    done: tuple[str, ...]


def parse_colour(text: str) -> tuple[int, int, int]:
    """A background colour: white, black, gray or #rrggbb; ValueError when neither."""
    value = text.strip().lower()
    if value in COLOURS:
        return COLOURS[value]
    if len(value) == 7 and value.startswith("#"):
        try:
            return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a colour: use white, black, gray or #rrggbb")


def fixed_suffix(source: Path) -> str:
    """The suffix of the corrected copy of `source`: .jpg for JPEG, else .png."""
    return ".jpg" if source.suffix.lower() in (".jpg", ".jpeg") else ".png"


def fix_image(
    source: Path, caption: str | None, background: tuple[int, int, int] = (255, 255, 255)
) -> Fixed:
    """The corrected copy of `source` with `caption` embedded; ImageFormatError if unreadable."""
    from PIL import Image, UnidentifiedImageError

    if source.suffix.lower() in NEEDS_HEIF:
        register_heif(source)
    done: list[str] = []
    try:
        with Image.open(source) as img:
            frames = int(getattr(img, "n_frames", 1) or 1)
            if frames > 1:
                img.seek(0)
                done.append(f"first frame of {frames}")
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            img.load()
            rgb = _to_rgb(img, background, done)
            if orientation in _TRANSPOSE:
                rgb = rgb.transpose(Image.Transpose(_TRANSPOSE[orientation]))
                done.append(f"turned upright (EXIF orientation {orientation})")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageFormatError(
            f"cannot make a corrected copy of {source.name}: {exc}",
            hint="re-save it as PNG or JPEG, or move it out of the folder",
        ) from exc
    if fixed_suffix(source) != ".jpg":
        return Fixed(encode_png(rgb, caption), "png", tuple(done))
    import io

    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=95)
    data = out.getvalue()
    if caption:
        from kohya_orchestrator.dataset.metadata import embed_caption

        data = embed_caption(data, caption).data
    return Fixed(data, "jpeg", tuple(done))


def _to_rgb(img: Image.Image, background: tuple[int, int, int], done: list[str]) -> Image.Image:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow's point() on 32-bit integers takes a linear map; convert("L") then clips.
        wide = img.convert("I")
        scale = 1 / 257 if mode != "I" or _top(wide) > 255 else 1
        img = wide.point(lambda v: v * scale + 0.5).convert("L")
        done.append("16-bit to 8-bit" if mode != "I" else "32-bit to 8-bit")
    elif mode == "F":
        top = 1.0 if _top(img) <= 1.0 else 255.0
        img = img.point(lambda v: v * (255 / top) + 0.5).convert("L")
        done.append("float to 8-bit")
    elif mode == "CMYK":
        img = _cmyk_to_rgb(img, done)
    alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if alpha:
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, (0, 0), rgba)
        done.append(f"transparency flattened on #{bytes(background).hex()}")
        return flat
    return img if img.mode == "RGB" else img.convert("RGB")


def _top(img: Image.Image) -> float:
    """The largest value of a one-band image."""
    high = img.getextrema()[1]
    return float(high if isinstance(high, (int, float)) else high[0])


def _cmyk_to_rgb(img: Image.Image, done: list[str]) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc:
        import io

        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            out = ImageCms.profileToProfile(
                img, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if out is not None:
                done.append("CMYK to RGB through its colour profile")
                return out
        except ImageCms.PyCMSError:
            pass
    done.append("CMYK to RGB (no colour profile)")
    return img.convert("RGB")


def encode_png(img: Image.Image, caption: str | None = None, level: int | None = None) -> bytes:
    """An 8-bit RGB PNG of `img` with `caption` embedded: no row filter, zlib at `level`
    (default PNG_LEVEL). Stored rows are written as one deflate block each, so the image
    bytes are copied once, not once per stage."""
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    width, height = rgb.size
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    head = _SIGNATURE + ihdr
    if caption:
        # The caption chunks `caption` writes, taken from a PNG with an empty IDAT: they
        # go before the first IDAT, so everything before the empty IDAT is the new head.
        from kohya_orchestrator.dataset.metadata import embed_caption

        tail = _chunk(b"IDAT", b"") + _chunk(b"IEND", b"")
        embedded = embed_caption(head + tail, caption).data
        assert embedded.endswith(tail)
        head = embedded[: -len(tail)]
    raw = memoryview(rgb.tobytes())
    stride = width * 3
    pieces: list[bytes | memoryview] = []
    if (PNG_LEVEL if level is None else level) == 0 and stride < 65535:
        pieces.append(b"\x78\x01")
        adler = 1
        for y in range(height):
            row = raw[y * stride : (y + 1) * stride]
            last = 1 if y == height - 1 else 0
            size = stride + 1
            pieces.append(struct.pack("<BHH", last, size, size ^ 0xFFFF) + b"\x00")
            pieces.append(row)
            adler = zlib.adler32(row, zlib.adler32(b"\x00", adler))
        pieces.append(struct.pack(">I", adler))
    else:
        rows = b"".join(b"\x00" + raw[y * stride : (y + 1) * stride] for y in range(height))
        pieces.append(zlib.compress(rows, PNG_LEVEL if level is None else level))
    crc = zlib.crc32(b"IDAT")
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    length = sum(len(piece) for piece in pieces)
    idat = [struct.pack(">I", length) + b"IDAT", *pieces, struct.pack(">I", crc)]
    return b"".join([head, *idat, _chunk(b"IEND", b"")])


_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
