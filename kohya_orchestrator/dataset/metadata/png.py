"""PNG: check every chunk, swap our text chunks before the first IDAT/fcTL, copy the rest."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from kohya_orchestrator.dataset.metadata import exif, xmp
from kohya_orchestrator.dataset.metadata.common import (
    Found,
    caption_tags,
    generation_kept_warning,
    is_blank,
)
from kohya_orchestrator.errors import ImageFormatError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
XMP_KEY = "XML:com.adobe.xmp"
DESCRIPTION_KEY = "Description"
PARAMETERS_KEY = "parameters"
CAPTIONISH = ("Description", "parameters", "Comment", "Title", "Subject", "Keywords")
MAX_TEXT = 16 * 1024 * 1024
_DECODED = (*TEXT_TYPES, b"eXIf")  # the only chunks whose bodies we read


@dataclass
class Chunk:
    """A chunk's type and extent; `body` is kept only for text and eXIf chunks."""

    type: bytes
    start: int
    end: int
    body: bytes


@dataclass
class TextChunk:
    keyword: str
    text: str


def _error(problem: str) -> ImageFormatError:
    return ImageFormatError(problem, hint="the file is damaged; re-export it from the original")


def parse(data: bytes) -> tuple[list[Chunk], int]:
    """The chunks up to IEND (lengths and CRCs checked) and where IEND ends."""
    size = len(data)
    pos = len(SIGNATURE)
    chunks: list[Chunk] = []
    view = memoryview(data)  # no copies of the (large) image data chunks
    while True:
        if pos == size:
            raise _error(f"truncated PNG: no IEND chunk (file ends at offset {pos})")
        if pos + 8 > size:
            raise _error(f"truncated PNG: chunk header at offset {pos} is cut off")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        if not ctype.isalpha() or not ctype.isascii():
            raise _error(f"corrupt PNG: invalid chunk type {ctype!r} at offset {pos}")
        name = ctype.decode("ascii")
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > size:
            raise _error(
                f"truncated PNG: chunk {name} at offset {pos} runs past the end of the file "
                f"({end} > {size} bytes)"
            )
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise _error(f"corrupt PNG: chunk {name} at offset {pos} has a bad CRC")
        if not chunks and ctype != b"IHDR":
            raise _error(f"corrupt PNG: first chunk is {name}, not IHDR")
        body = data[pos + 8 : end - 4] if ctype in _DECODED else b""
        chunks.append(Chunk(ctype, pos, end, body))
        pos = end
        if ctype == b"IEND":
            return chunks, pos


def _inflate(body: bytes, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_TEXT)
    except zlib.error as err:
        raise _error(f"corrupt PNG: compressed text in {where} does not inflate ({err})") from None
    if inflater.unconsumed_tail:
        raise _error(f"corrupt PNG: compressed text in {where} is over {MAX_TEXT:,} bytes")
    return out


def decode_text(chunk: Chunk) -> TextChunk:
    where = f"{chunk.type.decode()} chunk at offset {chunk.start}"
    body = chunk.body
    if b"\x00" not in body:
        raise _error(f"corrupt PNG: {where} has no keyword terminator")
    raw_key, rest = body.split(b"\x00", 1)
    keyword = raw_key.decode("latin-1")
    if chunk.type == b"tEXt":
        return TextChunk(keyword, rest.decode("latin-1"))
    if chunk.type == b"zTXt":
        return TextChunk(keyword, _inflate(rest[1:], where).decode("latin-1"))
    if len(rest) < 2 or rest[2:].count(b"\x00") < 2:
        raise _error(f"corrupt PNG: {where} is malformed")
    compressed = rest[0] == 1
    _lang, _translated, text = rest[2:].split(b"\x00", 2)
    raw = _inflate(text, where) if compressed else text
    try:
        return TextChunk(keyword, raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _error(f"corrupt PNG: {where} is not UTF-8") from None


def _texts(chunks: list[Chunk]) -> list[tuple[Chunk, TextChunk]]:
    return [(c, decode_text(c)) for c in chunks if c.type in TEXT_TYPES]


def _xmp_chunk(texts: list[tuple[Chunk, TextChunk]]) -> tuple[Chunk, TextChunk] | None:
    found = [(c, t) for c, t in texts if t.keyword == XMP_KEY]
    if len(found) > 1:
        offsets = ", ".join(str(c.start) for c, _ in found)
        raise _error(f"PNG has {len(found)} XMP chunks (offsets {offsets}); refusing to guess")
    return found[0] if found else None


def _read(
    data: bytes,
) -> tuple[list[Chunk], int, list[tuple[Chunk, TextChunk]], Found, xmp.Packet | None]:
    chunks, iend_end = parse(data)
    texts = _texts(chunks)
    found = Found()
    for _chunk, text in texts:
        if text.keyword in CAPTIONISH and not is_blank(text.text):
            found.fields.setdefault(f"PNG {text.keyword}", text.text)
    for chunk in chunks:
        if chunk.type == b"eXIf":
            fields, _uc = exif.read_fields(exif.Tiff(chunk.body))
            found.fields.update(fields)
    xmp_found = _xmp_chunk(texts)
    packet = xmp.parse(xmp_found[1].text.encode("utf-8")) if xmp_found else None
    if packet is not None:
        fields, found.caption = xmp.read_fields(packet)
        found.fields.update(fields)
    params = [t.text for _c, t in texts if t.keyword == PARAMETERS_KEY]
    foreign = [p for p in params if not is_blank(p) and p != found.caption]
    if foreign:
        found.generation_info = foreign[0]
    return chunks, iend_end, texts, found, packet


def read(data: bytes) -> Found:
    return _read(data)[3]


def text_chunk(keyword: str, text: str) -> bytes:
    """tEXt for ASCII text, else uncompressed iTXt (UTF-8)."""
    key = keyword.encode("latin-1")
    if text.isascii():
        ctype, body = b"tEXt", key + b"\x00" + text.encode("ascii")
    else:
        ctype, body = b"iTXt", key + b"\x00\x00\x00\x00\x00" + text.encode("utf-8")
    return _chunk(ctype, body)


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def embed(data: bytes, caption: str, overwrite: bool) -> tuple[bytes, list[str]]:
    chunks, iend_end, texts, found, old_packet = _read(data)
    warnings: list[str] = []
    write_params = overwrite or found.generation_info is None
    if not write_params:
        warnings.append(generation_kept_warning("the PNG 'parameters' text"))
    tags = caption_tags(caption)
    packet = xmp.merge(old_packet, caption, tags).decode("utf-8")
    ours = text_chunk(DESCRIPTION_KEY, caption)
    if write_params:
        ours += text_chunk(PARAMETERS_KEY, caption)
    ours += _chunk(b"iTXt", XMP_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + packet.encode())
    drop = {DESCRIPTION_KEY, XMP_KEY} | ({PARAMETERS_KEY} if write_params else set())
    dropped = {id(c) for c, t in texts if t.keyword in drop}
    view = memoryview(data)
    parts: list[bytes | memoryview] = [SIGNATURE]
    inserted = False
    for chunk in chunks:
        if not inserted and chunk.type in (b"IDAT", b"fcTL"):
            parts.append(ours)
            inserted = True
        if id(chunk) not in dropped:
            parts.append(view[chunk.start : chunk.end])
    if not inserted:
        raise _error("corrupt PNG: no IDAT chunk (no image data)")
    parts.append(view[iend_end:])
    return b"".join(parts), warnings
