"""Fuzzing the embedder: mutated files give a clean error or an output with unchanged image data."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from imagefactory import GOOD_KINDS, image_bytes

from kohya_orchestrator.dataset.metadata import (
    CaptionError,
    ImageFormatError,
    detect_format,
    embed_caption,
    jpeg,
    png,
    read_embedded,
    webp,
)

MUTATIONS_PER_KIND = 1000


def _library_image_data(fmt: str, data: bytes) -> object:
    """Image data located by the library's own (checked) walkers; used on mutated inputs,
    where the tests' simple walkers could trip over legal oddities such as fill bytes."""
    if fmt == "jpeg":
        return data[jpeg.parse(data).sos :]
    if fmt == "png":
        png_chunks, _end = png.parse(data)
        return [data[c.start : c.end] for c in png_chunks if c.type not in png.TEXT_TYPES]
    webp_chunks, _end = webp.parse(data)
    skip = (b"VP8X", b"EXIF", b"XMP ")
    return [(c.fourcc, bytes(c.body)) for c in webp_chunks if c.fourcc not in skip]


def _mutate_png_chunk(data: bytes, rnd: random.Random) -> bytes:
    """Change one byte inside a PNG chunk and fix its CRC, so the mutation gets past it."""
    starts = []
    pos = 8
    while pos + 8 <= len(data):
        starts.append(pos)
        pos += 12 + struct.unpack(">I", data[pos : pos + 4])[0]
    start = rnd.choice(starts)
    (length,) = struct.unpack(">I", data[start : start + 4])
    if length == 0:
        return data
    buf = bytearray(data)
    buf[start + 8 + rnd.randrange(length)] = rnd.randrange(256)
    crc = zlib.crc32(buf[start + 4 : start + 8 + length])
    buf[start + 8 + length : start + 12 + length] = struct.pack(">I", crc)
    return bytes(buf)


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    choice = rnd.randrange(6)
    if data.startswith(b"\x89PNG") and rnd.random() < 0.5:
        return _mutate_png_chunk(data, rnd)
    at = rnd.randrange(len(buf))
    if choice == 0:
        buf[at] ^= 1 << rnd.randrange(8)
    elif choice == 1:
        buf[at] = rnd.choice((0x00, 0xFF, 0x7F, 0x80))
    elif choice == 2:
        del buf[at:]
    elif choice == 3:
        buf[at:at] = rnd.randbytes(rnd.randrange(1, 16))
    elif choice == 4:
        del buf[at : at + rnd.randrange(1, 64)]
    else:  # a plausible but wrong 32-bit length or offset
        value = rnd.choice((0, 1, 7, 0xFFFF, 0xFFFFFFFF, len(buf), len(buf) + 1))
        buf[at : at + 4] = struct.pack(rnd.choice(("<I", ">I")), value)
    return bytes(buf)


@pytest.mark.slow
@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_mutations_fail_cleanly_or_keep_image_data(kind: str) -> None:
    rnd = random.Random(kind)
    untouched = image_bytes(kind)
    bases = (untouched, embed_caption(untouched, "first, caption").data)
    outcomes = {"refused": 0, "embedded": 0}
    for _ in range(MUTATIONS_PER_KIND):
        mutated = _mutate(rnd.choice(bases), rnd)
        try:
            result = embed_caption(mutated, "fuzz, caption, 日本語")
        except (ImageFormatError, CaptionError):
            outcomes["refused"] += 1
            continue
        outcomes["embedded"] += 1
        fmt = detect_format(mutated)
        assert result.format == fmt
        assert _library_image_data(fmt, result.data) == _library_image_data(fmt, mutated)
        assert read_embedded(result.data).caption == "fuzz, caption, 日本語"
        assert embed_caption(result.data, "fuzz, caption, 日本語").changed is False
    assert outcomes["embedded"] > 0
