"""JPEG: replace or insert the EXIF and XMP APP1 segments; everything from SOS on is copied."""

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
from kohya_orchestrator.errors import CaptionError, ImageFormatError

EXIF_ID = b"Exif\x00\x00"
XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
MPF_ID = b"MPF\x00"
MAX_PAYLOAD = 65533
TRUNCATED_SCAN = (
    "JPEG ends inside its image data (no end-of-image marker): the file is truncated; "
    "the caption was embedded but the picture may be incomplete"
)


@dataclass
class Segment:
    marker: int
    start: int
    end: int
    payload: bytes


@dataclass
class Layout:
    segments: list[Segment]
    sos: int
    truncated_scan: bool


def _error(problem: str) -> ImageFormatError:
    return ImageFormatError(problem, hint="the file is damaged; re-export it from the original")


def parse(data: bytes) -> Layout:
    """Walk the markers before SOS, checking every length against the file size."""
    size = len(data)
    pos = 2
    segments: list[Segment] = []
    while True:
        if pos >= size:
            raise _error(
                f"truncated JPEG: no image data (SOS) before the end of file at offset {pos}"
            )
        if data[pos] != 0xFF:
            raise _error(
                f"corrupt JPEG: expected a marker at offset {pos}, found 0x{data[pos]:02X}"
            )
        while pos + 1 < size and data[pos + 1] == 0xFF:
            pos += 1
        if pos + 1 >= size:
            raise _error(f"truncated JPEG: marker cut off at offset {pos}")
        marker = data[pos + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD8, 0xD9):
            raise _error(
                f"corrupt JPEG: marker 0xFF{marker:02X} at offset {pos} before the image data"
            )
        if pos + 4 > size:
            raise _error(f"truncated JPEG: segment 0xFF{marker:02X} at offset {pos} is cut off")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2:
            raise _error(
                f"corrupt JPEG: segment 0xFF{marker:02X} at offset {pos} has length {length}"
            )
        if end > size:
            raise _error(
                f"truncated JPEG: segment 0xFF{marker:02X} at offset {pos} runs past the end "
                f"of the file ({end} > {size} bytes)"
            )
        if marker == 0xDA:
            truncated = data.rfind(b"\xff\xd9", end) < 0
            return Layout(segments, pos, truncated)
        segments.append(Segment(marker, pos, end, data[pos + 4 : end]))
        pos = end


def _find(layout: Layout, marker: int, ident: bytes, name: str) -> Segment | None:
    found = [s for s in layout.segments if s.marker == marker and s.payload.startswith(ident)]
    if len(found) > 1:
        offsets = ", ".join(str(s.start) for s in found)
        raise _error(
            f"JPEG has {len(found)} {name} segments (offsets {offsets}); refusing to guess"
        )
    return found[0] if found else None


@dataclass
class Inspected:
    """A parsed JPEG with its metadata segments decoded."""

    layout: Layout
    found: Found
    exif_seg: Segment | None
    xmp_seg: Segment | None
    tiff: exif.Tiff | None
    packet: xmp.Packet | None


def inspect(data: bytes) -> Inspected:
    layout = parse(data)
    found = Found()
    if layout.truncated_scan:
        found.warnings.append(TRUNCATED_SCAN)
    user_comment = None
    exif_seg = _find(layout, 0xE1, EXIF_ID, "EXIF")
    tiff = exif.Tiff(exif_seg.payload[len(EXIF_ID) :]) if exif_seg else None
    if tiff is not None:
        fields, user_comment = exif.read_fields(tiff)
        found.fields.update(fields)
    xmp_seg = _find(layout, 0xE1, XMP_ID, "XMP")
    packet = xmp.parse(xmp_seg.payload[len(XMP_ID) :]) if xmp_seg else None
    if packet is not None:
        fields, found.caption = xmp.read_fields(packet)
        found.fields.update(fields)
    for seg in layout.segments:
        if seg.marker == 0xFE:
            comment = seg.payload.decode("utf-8", errors="replace")
            if not is_blank(comment):
                found.fields.setdefault("JPEG COM", comment)
    if user_comment is not None and not is_blank(user_comment) and user_comment != found.caption:
        found.generation_info = user_comment
    return Inspected(layout, found, exif_seg, xmp_seg, tiff, packet)


def read(data: bytes) -> Found:
    return inspect(data).found


def _segment(marker: int, payload: bytes, what: str, caption: str) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise CaptionError(_too_long(len(payload), what, caption), hint=_TOO_LONG_HINT)
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _exif_full(seen: Inspected, new_size: int, caption: str) -> CaptionError:
    """The error when the image's own EXIF leaves no room: blame what takes the room.

    Existing EXIF bytes never move (maker notes hold absolute offsets), so the caption goes
    in a tail after them; when the block is already near the 64 KB of one segment, even a
    short caption does not fit, and the caption is not what is too long.
    """
    assert seen.exif_seg is not None
    old = len(seen.exif_seg.payload) + 2
    added = new_size + 2 - old
    if added > MAX_PAYLOAD // 2:  # the caption itself is long: the usual message
        return CaptionError(_too_long(new_size, "EXIF", caption), _TOO_LONG_HINT)
    note = ""
    if seen.tiff is not None and seen.tiff.exif is not None:
        maker = seen.tiff.entry(seen.tiff.exif, exif.TAG_MAKER_NOTE)
        size = maker.size() if maker is not None else None
        if size:
            note = f", {size:,} of them a camera maker note"
    return CaptionError(
        f"no room for the caption in this JPEG's EXIF: its EXIF segment is already "
        f"{old:,} bytes{note}; with the caption ({len(caption):,} characters, {added:,} "
        f"bytes) it would be {new_size + 2:,}, over the 65,535-byte limit of one JPEG segment",
        "remove the large EXIF data (e.g. the maker note: exiftool -MakerNotes:All= FILE) "
        "or caption a copy without it",
    )


def _too_long(size: int, what: str, caption: str) -> str:
    return (
        f"caption too long for a JPEG: the {what} segment would be {size + 2:,} "
        f"bytes, over the 65,535-byte limit of one JPEG segment "
        f"({len(caption):,} characters)"
    )


_TOO_LONG_HINT = "shorten the caption (about 10,900 ASCII or 7,270 CJK characters fit)"


def embed(data: bytes, caption: str, overwrite: bool) -> tuple[bytes, list[str]]:
    seen = inspect(data)
    layout, found, exif_seg, xmp_seg = seen.layout, seen.found, seen.exif_seg, seen.xmp_seg
    warnings = [TRUNCATED_SCAN] if layout.truncated_scan else []
    mpf_seg = _find(layout, 0xE2, MPF_ID, "MPF")
    write_uc = overwrite or found.generation_info is None
    if not write_uc:
        warnings.append(generation_kept_warning("EXIF UserComment"))
    tags = caption_tags(caption)
    block = exif.embed_caption_fields(seen.tiff, caption, tags, write_uc)
    if exif_seg is not None and len(EXIF_ID + block) > MAX_PAYLOAD:
        raise _exif_full(seen, len(EXIF_ID + block), caption)
    new_exif = _segment(0xE1, EXIF_ID + block, "EXIF", caption)
    new_xmp = _segment(0xE1, XMP_ID + xmp.merge(seen.packet, caption, tags), "XMP", caption)

    # Insertion point for new segments: after SOI and any leading APP0 (JFIF must stay first).
    insert_at = 0
    while insert_at < len(layout.segments) and layout.segments[insert_at].marker == 0xE0:
        insert_at += 1
    parts: list[bytes] = [b"\xff\xd8"]
    mpf_out_at: int | None = None

    def emit_exif() -> None:
        parts.append(new_exif)
        if xmp_seg is None:
            parts.append(new_xmp)

    if exif_seg is None and insert_at == 0:
        emit_exif()
    prev_end = 2
    for index, seg in enumerate(layout.segments):
        parts.append(data[prev_end : seg.start])  # fill bytes or standalone markers, verbatim
        if seg is exif_seg:
            emit_exif()
        elif seg is xmp_seg:
            parts.append(new_xmp)
        else:
            if seg is mpf_seg:
                mpf_out_at = sum(len(p) for p in parts)
            parts.append(data[seg.start : seg.end])
        if exif_seg is None and index + 1 == insert_at:
            emit_exif()
        prev_end = seg.end
    parts.append(data[prev_end : layout.sos])
    prefix = b"".join(parts)
    if mpf_seg is not None and mpf_out_at is not None:
        prefix = _patch_mpf(prefix, mpf_out_at, mpf_seg.start, layout.sos)
    return b"".join((prefix, memoryview(data)[layout.sos :])), warnings


def _patch_mpf(prefix: bytes, new_at: int, old_at: int, old_sos: int) -> bytes:
    """Fix the MP index: the primary image's size, and the other images' relative offsets."""
    base_new = new_at + 8
    base_old = old_at + 8
    total_delta = len(prefix) - old_sos
    after_delta = (len(prefix) - base_new) - (old_sos - base_old)
    if total_delta == 0 and after_delta == 0:
        return prefix
    seg_len = struct.unpack(">H", prefix[new_at + 2 : new_at + 4])[0]
    block = prefix[base_new : new_at + 2 + seg_len]
    try:
        tiff = exif.Tiff(block)
    except ImageFormatError as err:
        raise _error(f"corrupt JPEG MPF index at offset {old_at}: {err.message}") from None
    entry = tiff.entry(tiff.ifd0, 0xB002)
    if entry is None or entry.type != exif.TYPE_UNDEFINED or entry.count % 16:
        raise _error(f"corrupt JPEG MPF index at offset {old_at}: no MP entry list")
    where = tiff.long(entry) if entry.count > 4 else 0
    out = bytearray(prefix)
    order = tiff.order
    for i in range(entry.count // 16):
        at = base_new + where + 16 * i
        size, offset = struct.unpack(order + "II", out[at + 4 : at + 12])
        if offset == 0:
            size += total_delta
        else:
            offset += after_delta
        if not (0 <= size < 1 << 32 and 0 <= offset < 1 << 32):
            raise _error(
                f"corrupt JPEG MPF index at offset {old_at}: image {i + 1} is out of range"
            )
        out[at + 4 : at + 12] = struct.pack(order + "II", size, offset)
    return bytes(out)
