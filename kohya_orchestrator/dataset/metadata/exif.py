"""EXIF (TIFF) blocks: read caption fields, and add ours without moving any existing byte.

Camera maker notes hold absolute offsets, so existing bytes never move: we append a tail
(marker, new IFD0, its values, new ExifIFD, its values) holding the old entries plus ours, and
re-point the header at it. A later edit finds the tail by its marker and rebuilds it in place,
so repeated runs do not grow the file and A, B, A gives A's bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kohya_orchestrator.dataset.metadata.common import is_blank
from kohya_orchestrator.errors import ImageFormatError

TAG_IMAGE_DESCRIPTION = 0x010E
TAG_EXIF_IFD = 0x8769
TAG_USER_COMMENT = 0x9286
TAG_MAKER_NOTE = 0x927C
TAG_XP_COMMENT = 0x9C9C
TAG_XP_KEYWORDS = 0x9C9E

TYPE_BYTE = 1
TYPE_ASCII = 2
TYPE_LONG = 4
TYPE_UNDEFINED = 7

TAIL_MARK = b"kohya-orch EXIF\x00"
NEW_HEADER = b"MM\x00\x2a\x00\x00\x00\x08"

_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}

# Tags whose value is the offset of another IFD (GPS, Interoperability, SubIFDs).
_POINTER_TAGS = (0x8825, 0xA005, 0x014A)

_UC_ASCII = b"ASCII\x00\x00\x00"
_UC_UNICODE = b"UNICODE\x00"
_UC_JIS = b"JIS\x00\x00\x00\x00\x00"


@dataclass
class Entry:
    """One 12-byte IFD entry, kept raw so its value offset stays valid."""

    tag: int
    type: int
    count: int
    raw: bytes

    def is_pointer(self) -> bool:
        """True for a single LONG holding the offset of another IFD (GPS, Interop, SubIFD)."""
        return self.tag in _POINTER_TAGS and self.type == TYPE_LONG and self.count == 1

    def size(self) -> int | None:
        unit = _TYPE_SIZES.get(self.type)
        return None if unit is None else unit * self.count


@dataclass
class Ifd:
    offset: int
    entries: list[Entry]
    next_offset: int


def _bad(problem: str) -> ImageFormatError:
    return ImageFormatError(
        f"malformed EXIF: {problem}",
        hint="the file's existing EXIF is damaged; repair it (e.g. exiftool -all= ) first",
    )


class Tiff:
    """A parsed TIFF/EXIF block (IFD0 and ExifIFD only; everything else stays opaque)."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8:
            raise _bad(f"block is only {len(data)} bytes")
        if data[:2] == b"II":
            self.order = "<"
        elif data[:2] == b"MM":
            self.order = ">"
        else:
            raise _bad(f"unknown byte order {data[:2].hex(' ')} at offset 0")
        self.data = data
        (magic, ifd0_offset) = struct.unpack(self.order + "HI", data[2:8])
        if magic != 42:
            raise _bad(f"TIFF magic is {magic}, not 42")
        self.ifd0 = self._ifd(ifd0_offset, "IFD0")
        if self.ifd0.next_offset and not 8 <= self.ifd0.next_offset <= len(data) - 2:
            raise _bad(
                f"IFD0's next-IFD offset {self.ifd0.next_offset} is outside the "
                f"{len(data)}-byte block"
            )
        self.exif: Ifd | None = None
        pointer = self.entry(self.ifd0, TAG_EXIF_IFD)
        if pointer is not None:
            self.exif = self._ifd(self.long(pointer), "ExifIFD")

    def _ifd(self, offset: int, name: str) -> Ifd:
        data = self.data
        if offset < 8 or offset + 2 > len(data):
            raise _bad(f"{name} offset {offset} is outside the {len(data)}-byte block")
        (count,) = struct.unpack(self.order + "H", data[offset : offset + 2])
        end = offset + 2 + 12 * count + 4
        if end > len(data):
            raise _bad(f"{name} at offset {offset} with {count} entries runs past the block end")
        entries: list[Entry] = []
        for i in range(count):
            raw = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, typ, cnt = struct.unpack(self.order + "HHI", raw[:8])
            entry = Entry(tag, typ, cnt, raw)
            size = entry.size()
            if size is not None and size > 4:
                (where,) = struct.unpack(self.order + "I", raw[8:])
                if where + size > len(data):
                    raise _bad(
                        f"{name} entry 0x{tag:04X} points past the end of the block "
                        f"(offset {where}, {size} bytes, block is {len(data)} bytes)"
                    )
            if entry.is_pointer():
                (where,) = struct.unpack(self.order + "I", raw[8:])
                if not 8 <= where <= len(data) - 2:
                    raise _bad(
                        f"{name} entry 0x{tag:04X} points to an IFD at offset {where}, "
                        f"outside the {len(data)}-byte block"
                    )
            entries.append(entry)
        (next_offset,) = struct.unpack(self.order + "I", data[end - 4 : end])
        return Ifd(offset, entries, next_offset)

    @staticmethod
    def entry(ifd: Ifd, tag: int) -> Entry | None:
        return next((e for e in ifd.entries if e.tag == tag), None)

    def long(self, entry: Entry) -> int:
        value: int = struct.unpack(self.order + "I", entry.raw[8:12])[0]
        return value

    def value(self, entry: Entry) -> bytes:
        size = entry.size() or 0
        if size <= 4:
            return entry.raw[8 : 8 + size]
        where = self.long(entry)
        return self.data[where : where + size]

    def tail_start(self) -> int | None:
        """Where our own tail begins, when IFD0 is the one we appended earlier."""
        start = self.ifd0.offset - len(TAIL_MARK)
        if start >= 8 and self.data[start : self.ifd0.offset] == TAIL_MARK:
            return start
        return None


def decode_user_comment(raw: bytes, order: str) -> str:
    """UserComment text: 8-byte charset code, then the text (UNICODE in the block's order)."""
    code, body = raw[:8], raw[8:]
    if code == _UC_UNICODE:
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            text = body.decode("utf-16", errors="replace")
        else:
            text = body.decode("utf-16-be" if order == ">" else "utf-16-le", errors="replace")
    elif code == _UC_JIS:
        text = body.decode("shift_jis", errors="replace")
    elif code == _UC_ASCII:
        text = body.decode("utf-8", errors="replace")
    else:
        text = (
            raw.decode("utf-8", errors="replace")
            if code.strip(b"\x00")
            else body.decode("utf-8", errors="replace")
        )
    return text.rstrip("\x00")


def encode_user_comment(text: str, order: str) -> bytes:
    if text.isascii():
        return _UC_ASCII + text.encode("ascii")
    return _UC_UNICODE + text.encode("utf-16-be" if order == ">" else "utf-16-le")


def _decode_text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_xp(raw: bytes) -> str:
    return raw.decode("utf-16-le", errors="replace").rstrip("\x00")


def read_fields(tiff: Tiff) -> tuple[dict[str, str], str | None]:
    """The non-blank caption-ish EXIF fields (name -> text) and the UserComment text, if any."""
    fields: dict[str, str] = {}
    readers = (
        (TAG_IMAGE_DESCRIPTION, "EXIF ImageDescription", _decode_text),
        (TAG_XP_COMMENT, "EXIF XPComment", _decode_xp),
        (TAG_XP_KEYWORDS, "EXIF XPKeywords", _decode_xp),
    )
    for tag, name, decode in readers:
        entry = tiff.entry(tiff.ifd0, tag)
        if entry is not None and not is_blank(text := decode(tiff.value(entry))):
            fields[name] = text
    user_comment = None
    if tiff.exif is not None:
        entry = tiff.entry(tiff.exif, TAG_USER_COMMENT)
        if entry is not None:
            user_comment = decode_user_comment(tiff.value(entry), tiff.order)
            if not is_blank(user_comment):
                fields["EXIF UserComment"] = user_comment
    return fields, user_comment


def _pack_ifd(
    order: str,
    start: int,
    old: list[Entry],
    new: dict[int, tuple[int, bytes]],
    pointer: tuple[int, int] | None,
    next_offset: int,
) -> bytes:
    """An IFD at `start` plus its out-of-line values; `pointer` is (tag, absolute offset)."""
    entries: dict[int, bytes] = {e.tag: e.raw for e in old}
    values = bytearray()
    count = len(set(entries) | set(new) | ({pointer[0]} if pointer else set()))
    values_at = start + 2 + 12 * count + 4
    for tag, (typ, payload) in new.items():
        head = struct.pack(order + "HHI", tag, typ, len(payload))
        if len(payload) <= 4:
            entries[tag] = head + payload.ljust(4, b"\x00")
        else:
            entries[tag] = head + struct.pack(order + "I", values_at + len(values))
            values += payload
            if len(values) % 2:
                values += b"\x00"
    if pointer is not None:
        entries[pointer[0]] = struct.pack(order + "HHII", pointer[0], TYPE_LONG, 1, pointer[1])
    body = b"".join(entries[tag] for tag in sorted(entries))
    return struct.pack(order + "H", count) + body + struct.pack(order + "I", next_offset) + values


def embed_caption_fields(
    tiff: Tiff | None, caption: str, tags: list[str], write_user_comment: bool
) -> bytes:
    """The EXIF block (new, or `tiff`'s with a new tail) holding our caption fields."""
    ifd0_new, exif_new = caption_fields(
        caption, tags, tiff.order if tiff else ">", write_user_comment
    )
    return embed_fields(tiff, ifd0_new, exif_new)


def embed_fields(
    tiff: Tiff | None,
    ifd0_new: dict[int, tuple[int, bytes]],
    exif_new: dict[int, tuple[int, bytes]],
) -> bytes:
    """The EXIF block with our IFD0/ExifIFD values set; existing bytes never move."""
    if tiff is None:
        order, base = ">", NEW_HEADER
        ifd0_old: list[Entry] = []
        next_ifd = 0
        exif_old: Ifd | None = None
        exif_pointer_old: int | None = None
    else:
        block = tiff.data
        order, base = tiff.order, block
        start = tiff.tail_start()
        if start is not None and _fits_before(tiff, start, set(ifd0_new) | set(exif_new)):
            base = block[:start]
        ifd0_old = [e for e in tiff.ifd0.entries if e.tag not in ifd0_new]
        next_ifd = tiff.ifd0.next_offset
        exif_old = tiff.exif
        pointer_entry = tiff.entry(tiff.ifd0, TAG_EXIF_IFD)
        exif_pointer_old = tiff.long(pointer_entry) if pointer_entry else None
    out = bytearray(base)
    if len(out) % 2:
        out += b"\x00"
    out += TAIL_MARK
    ifd0_at = len(out)
    rebuild_exif = bool(exif_new) or (
        exif_pointer_old is not None and exif_pointer_old >= len(base)
    )
    if not rebuild_exif:
        out += _pack_ifd(order, ifd0_at, ifd0_old, ifd0_new, None, next_ifd)
    else:
        ifd0_keep = [e for e in ifd0_old if e.tag != TAG_EXIF_IFD]
        # Pack once to learn IFD0's size, then again with the real ExifIFD offset.
        size = len(_pack_ifd(order, ifd0_at, ifd0_keep, ifd0_new, (TAG_EXIF_IFD, 0), next_ifd))
        exif_at = ifd0_at + size
        out += _pack_ifd(order, ifd0_at, ifd0_keep, ifd0_new, (TAG_EXIF_IFD, exif_at), next_ifd)
        exif_keep = [e for e in (exif_old.entries if exif_old else []) if e.tag not in exif_new]
        # ExifIFD never chains; some writers (piexif) leave junk in its next-IFD field.
        out += _pack_ifd(order, exif_at, exif_keep, exif_new, None, 0)
    out[4:8] = struct.pack(order + "I", ifd0_at)
    return bytes(out)


def _fits_before(tiff: Tiff, limit: int, replaced: set[int]) -> bool:
    """True when every value our rebuilt tail keeps (and every linked IFD) lies before `limit`."""
    if tiff.ifd0.next_offset >= limit:
        return False
    for ifd in [tiff.ifd0] + ([tiff.exif] if tiff.exif else []):
        for entry in ifd.entries:
            if entry.tag in replaced or entry.tag == TAG_EXIF_IFD:
                continue
            size = entry.size()
            if size is not None and size > 4 and tiff.long(entry) + size > limit:
                return False
            if entry.is_pointer() and tiff.long(entry) >= limit:
                return False
    return True


def caption_fields(
    caption: str, tags: list[str], order: str, write_user_comment: bool
) -> tuple[dict[int, tuple[int, bytes]], dict[int, tuple[int, bytes]]]:
    """Our IFD0 and ExifIFD values for a caption."""
    ifd0 = {
        TAG_IMAGE_DESCRIPTION: (TYPE_ASCII, caption.encode("utf-8") + b"\x00"),
        TAG_XP_COMMENT: (TYPE_BYTE, caption.encode("utf-16-le") + b"\x00\x00"),
        TAG_XP_KEYWORDS: (TYPE_BYTE, ";".join(tags).encode("utf-16-le") + b"\x00\x00"),
    }
    exif: dict[int, tuple[int, bytes]] = {}
    if write_user_comment:
        exif[TAG_USER_COMMENT] = (TYPE_UNDEFINED, encode_user_comment(caption, order))
    return ifd0, exif
