"""Corrected copies of images sd-scripts would misread (imagecheck): decode once, fix, encode.

The copy is what sd-scripts should have seen: the first frame, turned upright
(`ImageOps.exif_transpose`), 16-bit and float values scaled to 8 bits, CMYK converted
through its colour profile when it has one, transparency flattened on a background colour,
8-bit RGB. A JPEG source gives a JPEG copy (quality 95: the source was lossy already);
everything else a PNG. PNGs are written here rather than by Pillow: Pillow's adaptive
filtering costs about 10x a plain zlib pass, and `prepare` makes these copies inline. The
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
# zlib level of the PNG copies: 1 is the fastest that still compresses.
PNG_LEVEL = 1


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
    if fixed_suffix(source) == ".jpg":
        import io

        out = io.BytesIO()
        rgb.save(out, "JPEG", quality=95)
        data, fmt = out.getvalue(), "jpeg"
    else:
        data, fmt = encode_png(rgb), "png"
    if caption:
        from kohya_orchestrator.dataset.metadata import embed_caption

        data = embed_caption(data, caption).data
    return Fixed(data, fmt, tuple(done))


def _to_rgb(img: Image.Image, background: tuple[int, int, int], done: list[str]) -> Image.Image:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        import numpy as np

        arr = np.asarray(img).astype(np.uint32)
        scale = 257 if mode != "I" or int(arr.max(initial=0)) > 255 else 1
        img = Image.fromarray(((arr + scale // 2) // scale).clip(0, 255).astype(np.uint8), "L")
        done.append("16-bit to 8-bit" if mode != "I" else "32-bit to 8-bit")
    elif mode == "F":
        import numpy as np

        arr = np.asarray(img)
        top = 1.0 if float(arr.max(initial=0.0)) <= 1.0 else 255.0
        img = Image.fromarray((arr / top * 255).round().clip(0, 255).astype(np.uint8), "L")
        done.append("float to 8-bit")
    elif mode == "CMYK":
        img = _cmyk_to_rgb(img, done)
    alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if alpha:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, background)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        done.append(f"transparency flattened on #{bytes(background).hex()}")
        return flat
    return img if img.mode == "RGB" else img.convert("RGB")


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


def encode_png(img: Image.Image, level: int = PNG_LEVEL) -> bytes:
    """An 8-bit RGB PNG of `img`: the Up filter and one zlib pass (see the module docstring)."""
    import numpy as np

    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    height, width = arr.shape[:2]
    rows = arr.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # Up: each byte minus the one above it
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    body = compressor.compress(filtered.tobytes()) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", ihdr), _chunk(b"IDAT", body), _chunk(b"IEND", b"")]
    )


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)
