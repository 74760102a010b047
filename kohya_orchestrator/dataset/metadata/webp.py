"""WebP: make the file extended (VP8X) if needed and swap the EXIF and XMP chunks."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kohya_orchestrator.dataset.metadata import exif, xmp
from kohya_orchestrator.dataset.metadata.common import (
    Found,
    caption_tags,
    generation_kept_warning,
    is_blank,
)
from kohya_orchestrator.errors import ImageFormatError

IMAGE_CHUNKS = (b"VP8 ", b"VP8L", b"ALPH", b"ANMF")
FLAG_ALPHA = 0x10
FLAG_EXIF = 0x08
FLAG_XMP = 0x04
EXIF_PREFIX = b"Exif\x00\x00"


@dataclass
class Chunk:
    """A chunk's FourCC, offset and body (a view into the file: image data is never copied)."""

    fourcc: bytes
    start: int
    body: memoryview


def _error(problem: str) -> ImageFormatError:
    return ImageFormatError(problem, hint="the file is damaged; re-export it from the original")


def _name(fourcc: bytes) -> str:
    return fourcc.decode("latin-1").strip()


def parse(data: bytes) -> tuple[list[Chunk], int]:
    """The chunks inside the RIFF container (sizes checked) and where the container ends."""
    size = len(data)
    (riff_size,) = struct.unpack("<I", data[4:8])
    riff_end = 8 + riff_size
    if riff_end > size:
        raise _error(
            f"truncated WebP: RIFF size {riff_size} at offset 4 runs past the end of the file "
            f"({riff_end} > {size} bytes)"
        )
    pos = 12
    chunks: list[Chunk] = []
    view = memoryview(data)
    while pos < riff_end:
        if pos + 8 > riff_end:
            raise _error(f"truncated WebP: chunk header at offset {pos} is cut off")
        fourcc = data[pos : pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = pos + 8 + length
        if end > riff_end:
            raise _error(
                f"truncated WebP: chunk '{_name(fourcc)}' at offset {pos} runs past the end of "
                f"the RIFF data ({end} > {riff_end} bytes)"
            )
        chunks.append(Chunk(fourcc, pos, view[pos + 8 : end]))
        pos = end + (length & 1)
    if not chunks:
        raise _error("truncated WebP: no chunks after the 12-byte RIFF header")
    if chunks[0].fourcc not in (b"VP8 ", b"VP8L", b"VP8X"):
        first = _name(chunks[0].fourcc)
        raise _error(f"corrupt WebP: first chunk is '{first}', not VP8, VP8L or VP8X")
    # A RIFF size that cuts a chunk's pad byte off: the pad belongs to the chunk, not the tail.
    return chunks, max(riff_end, min(pos, size))


def _single(chunks: list[Chunk], fourcc: bytes, name: str) -> Chunk | None:
    found = [c for c in chunks if c.fourcc == fourcc]
    if len(found) > 1:
        offsets = ", ".join(str(c.start) for c in found)
        raise _error(f"WebP has {len(found)} {name} chunks (offsets {offsets}); refusing to guess")
    return found[0] if found else None


@dataclass
class Inspected:
    """A parsed WebP with its metadata chunks decoded."""

    chunks: list[Chunk]
    riff_end: int
    found: Found
    exif_chunk: Chunk | None
    tiff: exif.Tiff | None
    packet: xmp.Packet | None


def inspect(data: bytes) -> Inspected:
    chunks, riff_end = parse(data)
    found = Found()
    user_comment = None
    exif_chunk = _single(chunks, b"EXIF", "EXIF")
    tiff = None
    if exif_chunk is not None:
        tiff = exif.Tiff(bytes(exif_chunk.body).removeprefix(EXIF_PREFIX))
        fields, user_comment = exif.read_fields(tiff)
        found.fields.update(fields)
    xmp_chunk = _single(chunks, b"XMP ", "XMP")
    packet = xmp.parse(bytes(xmp_chunk.body)) if xmp_chunk else None
    if packet is not None:
        fields, found.caption = xmp.read_fields(packet)
        found.fields.update(fields)
    if user_comment is not None and not is_blank(user_comment) and user_comment != found.caption:
        found.generation_info = user_comment
    return Inspected(chunks, riff_end, found, exif_chunk, tiff, packet)


def read(data: bytes) -> Found:
    return inspect(data).found


def _chunk(fourcc: bytes, body: bytes | memoryview) -> list[bytes | memoryview]:
    """The pieces of a chunk (header, body, pad byte), for one final join."""
    return [fourcc + struct.pack("<I", len(body)), body, b"\x00" if len(body) % 2 else b""]


def _vp8x(first: Chunk) -> list[bytes | memoryview]:
    """A VP8X header for a simple (VP8 / VP8L) file, canvas read from the bitstream."""
    body = bytes(first.body[:10])  # the frame header only
    flags = FLAG_EXIF | FLAG_XMP
    if first.fourcc == b"VP8 ":
        if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
            raise _error(f"corrupt WebP: VP8 frame header at offset {first.start + 8} is invalid")
        width = struct.unpack("<H", body[6:8])[0] & 0x3FFF
        height = struct.unpack("<H", body[8:10])[0] & 0x3FFF
    else:
        if len(body) < 5 or body[0] != 0x2F:
            raise _error(f"corrupt WebP: VP8L header at offset {first.start + 8} is invalid")
        (bits,) = struct.unpack("<I", body[1:5])
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
        if (bits >> 28) & 1:
            flags |= FLAG_ALPHA
    canvas = struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    return _chunk(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)


def embed(data: bytes, caption: str, overwrite: bool) -> tuple[bytes, list[str]]:
    seen = inspect(data)
    chunks, riff_end, found = seen.chunks, seen.riff_end, seen.found
    warnings: list[str] = []
    write_uc = overwrite or found.generation_info is None
    if not write_uc:
        warnings.append(generation_kept_warning("EXIF UserComment"))
    tags = caption_tags(caption)
    # Some writers keep JPEG's "Exif\0\0" prefix in the chunk; keep the file's convention.
    has_prefix = seen.exif_chunk is not None and seen.exif_chunk.body[:6] == EXIF_PREFIX
    block = exif.embed_caption_fields(seen.tiff, caption, tags, write_uc)
    new_exif = _chunk(b"EXIF", (EXIF_PREFIX if has_prefix else b"") + block)
    new_xmp = _chunk(b"XMP ", xmp.merge(seen.packet, caption, tags))

    first = chunks[0]
    if first.fourcc == b"VP8X":
        if len(first.body) < 10:
            raise _error(f"corrupt WebP: VP8X chunk at offset {first.start} is too short")
        body = bytes([first.body[0] | FLAG_EXIF | FLAG_XMP]) + first.body[1:]
        parts = _chunk(b"VP8X", body)
        rest = chunks[1:]
    else:
        parts = _vp8x(first)
        rest = chunks
    last_image = max((i for i, c in enumerate(rest) if c.fourcc in IMAGE_CHUNKS), default=-1)
    if last_image < 0:
        raise _error("corrupt WebP: no image data chunk (VP8, VP8L or ANMF)")
    for index, chunk in enumerate(rest):
        if chunk.fourcc not in (b"EXIF", b"XMP "):
            parts.extend(_chunk(chunk.fourcc, chunk.body))
        if index == last_image:
            parts.extend(new_exif + new_xmp)
    riff_size = 4 + sum(len(p) for p in parts)
    head = b"RIFF" + struct.pack("<I", riff_size) + b"WEBP"
    return b"".join([head, *parts, memoryview(data)[riff_end:]]), warnings
