"""Lossless caption embedding in JPEG, PNG and WebP: edit the container, never re-encode.

All functions take and return bytes; nothing here touches the file system.

Our embeds are recognised by an XMP `rdf:Description` carrying
`kohyaorch:CaptionedBy="kohya-orch"` (namespace `XMP_NAMESPACE`); its `dc:description`
is the caption this tool wrote. Every format carries that XMP packet. EXIF UserComment or
PNG `parameters` holding anything else (not blank) is foreign generation info.

`EmbeddedInfo.fields` keys: "EXIF ImageDescription", "EXIF UserComment", "EXIF XPComment",
"EXIF XPKeywords", "XMP dc:description", "XMP dc:subject" (tags joined with ", "),
"JPEG COM", "PNG Description", "PNG parameters", "PNG Comment", "PNG Title", "PNG Subject",
"PNG Keywords"; blank values are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kohya_orchestrator.dataset.metadata import jpeg, png, webp
from kohya_orchestrator.dataset.metadata.common import (
    XMP_NAMESPACE,
    XMP_PREFIX,
    caption_tags,
    detect_format,
    validate_caption,
)
from kohya_orchestrator.errors import CaptionError, ImageFormatError

Format = Literal["jpeg", "png", "webp"]

__all__ = [
    "XMP_NAMESPACE",
    "XMP_PREFIX",
    "CaptionError",
    "EmbedResult",
    "EmbeddedInfo",
    "Format",
    "ImageFormatError",
    "caption_tags",
    "detect_format",
    "embed_caption",
    "read_embedded",
    "validate_caption",
]


@dataclass
class EmbeddedInfo:
    """What an image file carries: our caption, foreign generation info, every caption field."""

    format: Format
    caption: str | None = None
    generation_info: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class EmbedResult:
    """The edited file (same bytes and changed=False when nothing had to change)."""

    format: Format
    data: bytes
    changed: bool
    warnings: list[str] = field(default_factory=list)


# One container editor per format: each module has read(data) and embed(data, text, force).
_EDITORS = {"jpeg": jpeg, "png": png, "webp": webp}


def read_embedded(data: bytes) -> EmbeddedInfo:
    """Read the caption fields of an image; raises ImageFormatError for corrupt files."""
    fmt = detect_format(data)
    found = _EDITORS[fmt].read(data)
    return EmbeddedInfo(
        format=fmt,
        caption=found.caption,
        generation_info=found.generation_info,
        fields=found.fields,
        warnings=found.warnings,
    )


def embed_caption(
    data: bytes, caption: str, *, overwrite_generation_info: bool = False
) -> EmbedResult:
    """Embed `caption` in every caption field of the image without touching its image data.

    Generation parameters found in EXIF UserComment or PNG `parameters` are kept (with a
    warning) unless `overwrite_generation_info`. Raises CaptionError for unusable captions
    and ImageFormatError for files that cannot be edited safely.
    """
    text = validate_caption(caption)
    fmt = detect_format(data)
    new, warnings = _EDITORS[fmt].embed(data, text, overwrite_generation_info)
    if new == data:
        return EmbedResult(format=fmt, data=data, changed=False, warnings=warnings)
    return EmbedResult(format=fmt, data=new, changed=True, warnings=warnings)
