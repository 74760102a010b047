"""Shared pieces of the metadata package: format sniffing, caption rules, read results."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from kohya_orchestrator.errors import CaptionError, ImageFormatError

XMP_NAMESPACE = "https://github.com/kohya-orchestrator/ns/caption/1.0/"
XMP_PREFIX = "kohyaorch"
TOOL_NAME = "kohya-orch"

SUPPORTED_HINT = "only JPEG, PNG and WebP files can carry an embedded caption"


@dataclass
class Found:
    """Caption fields read from one file by a format module."""

    caption: str | None = None
    generation_info: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _other_format(data: bytes) -> str | None:
    """Name a recognisable but unsupported format, or None."""
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM" and len(data) >= 14:
        return "BMP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "HEIC/HEIF"
        return f"ISO media ({brand.decode('latin-1')!r})"
    if data[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n" or data[:2] == b"\xff\x0a":
        return "JPEG XL"
    if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or data[:4] == b"\xff\x4f\xff\x51":
        return "JPEG 2000"
    if data[:4] == b"RIFF" and len(data) >= 12:
        return f"RIFF ({data[8:12].decode('latin-1')!r})"
    if data[:4] == b"8BPS":
        return "Photoshop PSD"
    if data[:4] == b"\x00\x00\x01\x00":
        return "ICO"
    if data[:5] == b"%PDF-":
        return "PDF"
    return None


def detect_format(data: bytes) -> Literal["jpeg", "png", "webp"]:
    """The image format decided by content; ImageFormatError for anything else."""
    if not data:
        raise ImageFormatError("empty file (0 bytes)", hint=SUPPORTED_HINT)
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    other = _other_format(data)
    if other is not None:
        raise ImageFormatError(f"unsupported image format: {other}", hint=SUPPORTED_HINT)
    for name, magic in (
        ("JPEG", b"\xff\xd8\xff"),
        ("PNG", b"\x89PNG\r\n\x1a\n"),
        ("WebP", b"RIFF"),
    ):
        if len(data) < len(magic) and magic.startswith(data):
            raise ImageFormatError(
                f"truncated {name} file: only {len(data)} bytes", hint=SUPPORTED_HINT
            )
    if data[:4] == b"RIFF" and len(data) < 12:
        raise ImageFormatError(f"truncated RIFF file: only {len(data)} bytes", hint=SUPPORTED_HINT)
    raise ImageFormatError(
        f"not a JPEG, PNG or WebP image (starts with {data[:8].hex(' ')})",
        hint=SUPPORTED_HINT,
    )


def validate_caption(caption: str) -> str:
    """The caption to embed: CRLF becomes LF; control characters and bad code points refused."""
    text = caption.replace("\r\n", "\n")
    if not text.strip():
        raise CaptionError("caption is empty", hint="give a caption with at least one tag")
    for index, char in enumerate(text):
        code = ord(char)
        if char in "\t\n":
            continue
        if 0xD800 <= code <= 0xDFFF:
            raise CaptionError(
                f"caption has a lone surrogate U+{code:04X} at character {index + 1}",
                hint="the caption text is not valid Unicode; fix the .txt file's encoding",
            )
        if unicodedata.category(char) == "Cc" or code in (0xFFFE, 0xFFFF):
            raise CaptionError(
                f"caption has a control character U+{code:04X} at character {index + 1}",
                hint="remove control characters (only tab and line feed are allowed)",
            )
    return text


def caption_tags(caption: str) -> list[str]:
    """The comma-separated tags of a caption, stripped, empty ones dropped."""
    return [tag.strip() for tag in caption.split(",") if tag.strip()]


def is_blank(text: str) -> bool:
    """True for text that holds nothing (only NULs and whitespace)."""
    return not text.replace("\x00", "").strip()


def generation_kept_warning(where: str) -> str:
    """The warning given when foreign generation parameters were left in place."""
    return (
        f"kept the generation parameters in {where}; the caption went to the other fields "
        "(--overwrite-generation-info replaces them)"
    )
