"""Caption embedding refuses bad files and bad captions with exact, actionable messages."""

from __future__ import annotations

import struct
import zlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imagefactory import BAD_KINDS, FOREIGN_XMP, KINDS
from imagefactory import image_bytes as make_bytes

from kohya_orchestrator.dataset.metadata import (
    CaptionError,
    ImageFormatError,
    detect_format,
    embed_caption,
    read_embedded,
    validate_caption,
)

XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"


@cache
def image_bytes(kind: str) -> bytes:
    return make_bytes(kind)


def refused(data: bytes) -> ImageFormatError:
    with pytest.raises(ImageFormatError) as read_err:
        read_embedded(data)
    with pytest.raises(ImageFormatError) as embed_err:
        embed_caption(data, "tag")
    assert read_err.value.message == embed_err.value.message
    assert embed_err.value.hint
    return embed_err.value


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_files_refused_with_exact_message(kind: str) -> None:
    assert refused(image_bytes(kind)).message == KINDS[kind].error


def test_unsupported_formats_named_with_hint() -> None:
    with pytest.raises(ImageFormatError) as err:
        detect_format(image_bytes("gif_as_jpg"))
    assert err.value.render() == (
        "unsupported image format: GIF\n"
        "  hint: only JPEG, PNG and WebP files can carry an embedded caption"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xd8", "truncated JPEG file: only 2 bytes"),
        (b"\x89PNG", "truncated PNG file: only 4 bytes"),
        (b"RIFF\x10\x00\x00\x00WE", "truncated RIFF file: only 10 bytes"),
        (b"RIFF\x04\x00\x00\x00WAVE", "unsupported image format: RIFF ('WAVE')"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "unsupported image format: JPEG XL"),
    ],
)
def test_short_and_foreign_headers(data: bytes, message: str) -> None:
    assert refused(data).message == message


def _jpeg_with(*segments: bytes) -> bytes:
    base = image_bytes("jpeg_baseline")
    return base[:20] + b"".join(segments) + base[20:]


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _png_with(*chunks: bytes) -> bytes:
    base = image_bytes("png_rgb")
    at = base.index(b"IDAT") - 4
    return base[:at] + b"".join(chunks) + base[at:]


def test_jpeg_with_two_exif_segments() -> None:
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
    data = _jpeg_with(_app1(exif), _app1(exif))
    assert refused(data).message == ("JPEG has 2 EXIF segments (offsets 20, 44); refusing to guess")


def test_exif_value_past_block_end() -> None:
    entry = struct.pack(">HHII", 0x010E, 2, 100, 4000)
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x01" + entry + b"\x00\x00\x00\x00"
    assert refused(_jpeg_with(_app1(b"Exif\x00\x00" + tiff))).message == (
        "malformed EXIF: IFD0 entry 0x010E points past the end of the block "
        "(offset 4000, 100 bytes, block is 26 bytes)"
    )


def test_exif_ifd_count_past_block_end() -> None:
    tiff = b"II*\x00\x08\x00\x00\x00\xff\x00"
    assert refused(_jpeg_with(_app1(b"Exif\x00\x00" + tiff))).message == (
        "malformed EXIF: IFD0 at offset 8 with 255 entries runs past the block end"
    )


def test_xmp_not_utf8_refused() -> None:
    packet = FOREIGN_XMP.replace(b"Jane Doe", b"Jane \xff Doe")
    assert refused(_jpeg_with(_app1(XMP_ID + packet))).message == (
        "malformed XMP: not well-formed (invalid token): line 10, column 37"
    )


def test_png_two_xmp_chunks() -> None:
    chunk = _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + FOREIGN_XMP)
    assert refused(_png_with(chunk, chunk)).message == (
        f"PNG has 2 XMP chunks (offsets 33, {33 + len(chunk)}); refusing to guess"
    )


def test_png_text_bomb_refused() -> None:
    bomb = zlib.compress(b"a" * (17 * 1024 * 1024), 9)
    chunk = _png_chunk(b"zTXt", b"Comment\x00\x00" + bomb)
    assert refused(_png_with(chunk)).message == (
        "corrupt PNG: compressed text in zTXt chunk at offset 33 is over 16,777,216 bytes"
    )


def test_png_without_iend() -> None:
    data = image_bytes("png_rgb")
    assert refused(data[: data.index(b"IEND") - 4]).message == (
        f"truncated PNG: no IEND chunk (file ends at offset {data.index(b'IEND') - 4})"
    )


def test_png_first_chunk_must_be_ihdr() -> None:
    data = image_bytes("png_rgb")
    bad = data[:8] + _png_chunk(b"tEXt", b"a\x00b") + data[8:]
    assert refused(bad).message == "corrupt PNG: first chunk is tEXt, not IHDR"


def test_webp_two_exif_chunks_and_chunk_past_end() -> None:
    data = image_bytes("webp_a1111")
    exif_at = data.index(b"EXIF")
    (size,) = struct.unpack("<I", data[exif_at + 4 : exif_at + 8])
    chunk = data[exif_at : exif_at + 8 + size + (size & 1)]
    doubled = data + chunk
    doubled = doubled[:4] + struct.pack("<I", len(doubled) - 8) + doubled[8:]
    assert refused(doubled).message == (
        f"WebP has 2 EXIF chunks (offsets {exif_at}, {len(data)}); refusing to guess"
    )
    cut = data[:exif_at] + data[exif_at : exif_at + 4] + struct.pack("<I", 10**6) + b"xx"
    cut = cut[:4] + struct.pack("<I", len(cut) - 8) + cut[8:]
    assert refused(cut).message == (
        f"truncated WebP: chunk 'EXIF' at offset {exif_at} runs past the end of the RIFF "
        f"data ({exif_at + 8 + 10**6} > {len(cut)} bytes)"
    )


def test_jpeg_without_image_data() -> None:
    data = image_bytes("jpeg_baseline")
    assert refused(data[:20] + b"\xff\xd9").message == (
        "corrupt JPEG: marker 0xFFD9 at offset 20 before the image data"
    )
    assert refused(data[:20] + b"\x00\x00").message == (
        "corrupt JPEG: expected a marker at offset 20, found 0x00"
    )
    assert refused(data[:20]).message == (
        "truncated JPEG: no image data (SOS) before the end of file at offset 20"
    )


@pytest.mark.parametrize(
    ("caption", "message"),
    [
        ("", "caption is empty"),
        ("  \n", "caption is empty"),
        ("a, b\x00c", "caption has a control character U+0000 at character 5"),
        ("a\rb", "caption has a control character U+000D at character 2"),
        ("a\x1b[31m", "caption has a control character U+001B at character 2"),
        ("a\x85", "caption has a control character U+0085 at character 2"),
        ("bad \ud800 surrogate", "caption has a lone surrogate U+D800 at character 5"),
    ],
)
def test_bad_captions(caption: str, message: str) -> None:
    with pytest.raises(CaptionError) as err:
        embed_caption(image_bytes("png_rgb"), caption)
    assert err.value.message == message


def test_tab_and_newline_allowed() -> None:
    assert validate_caption("a,\tb\r\nc") == "a,\tb\nc"


def test_jpeg_exif_segment_limit() -> None:
    data = image_bytes("jpeg_baseline")
    with pytest.raises(CaptionError) as err:
        embed_caption(data, "a" * 11_000)
    assert err.value.render() == (
        "caption too long for a JPEG: the EXIF segment would be 66,118 bytes, over the "
        "65,535-byte limit of one JPEG segment (11,000 characters)\n"
        "  hint: shorten the caption (about 10,900 ASCII or 7,270 CJK characters fit)"
    )
    assert embed_caption(data, "a" * 10_800).changed
    assert embed_caption(image_bytes("webp_lossy"), "a" * 11_000).changed


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_any_text_round_trips_or_is_refused(text: str) -> None:
    for kind in ("jpeg_baseline", "png_rgb", "webp_lossy"):
        try:
            result = embed_caption(image_bytes(kind), text)
        except CaptionError:
            continue
        assert read_embedded(result.data).caption == text.replace("\r\n", "\n")


def test_exif_next_ifd_outside_block() -> None:
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x02\x00\x00"
    assert refused(_jpeg_with(_app1(b"Exif\x00\x00" + tiff))).message == (
        "malformed EXIF: IFD0's next-IFD offset 131072 is outside the 14-byte block"
    )


def test_webp_odd_riff_size_does_not_grow_the_file() -> None:
    # Pick a caption whose XMP chunk (the last one) has an odd size, so it ends in a pad byte.
    caption = next(
        c
        for c in ("a, b", "a, b ")
        if embed_caption(image_bytes("webp_lossy"), c).data.rsplit(b"XMP ", 1)[1][0] % 2
    )
    data = embed_caption(image_bytes("webp_lossy"), caption).data
    assert data.endswith(b"\x00")
    # An odd RIFF size that leaves the last chunk's pad byte outside the container.
    odd = data[:4] + struct.pack("<I", len(data) - 9) + data[8:]
    first = embed_caption(odd, caption)
    assert first.data == data  # RIFF size repaired, the pad byte not duplicated as a tail
    assert embed_caption(first.data, caption).changed is False


def test_exif_gps_pointer_outside_block() -> None:
    entry = struct.pack(">HHII", 0x8825, 4, 1, 5000)
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x01" + entry + b"\x00\x00\x00\x00"
    assert refused(_jpeg_with(_app1(b"Exif\x00\x00" + tiff))).message == (
        "malformed EXIF: IFD0 entry 0x8825 points to an IFD at offset 5000, "
        "outside the 26-byte block"
    )


def test_mpf_index_out_of_range_refused() -> None:
    data = bytearray(make_bytes("jpeg_mpo"))
    mpf = data.index(b"MPF\x00") + 4
    order = "<" if data[mpf : mpf + 2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[mpf + 4 : mpf + 8])
    (count,) = struct.unpack(order + "H", data[mpf + ifd : mpf + ifd + 2])
    for i in range(count):
        at = mpf + ifd + 2 + 12 * i
        if struct.unpack(order + "H", data[at : at + 2])[0] == 0xB002:
            (where,) = struct.unpack(order + "I", data[at + 8 : at + 12])
    data[mpf + where + 4 : mpf + where + 8] = struct.pack(order + "I", 0xFFFFFFF0)
    with pytest.raises(ImageFormatError) as err:
        embed_caption(bytes(data), "tag")
    assert err.value.message == "corrupt JPEG MPF index at offset 20: image 1 is out of range"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF\x04\x00\x00\x00WEBP", "truncated WebP: no chunks after the 12-byte RIFF header"),
        (
            b"RIFF\x0e\x00\x00\x00WEBPICCP\x02\x00\x00\x00ab",
            "corrupt WebP: first chunk is 'ICCP', not VP8, VP8L or VP8X",
        ),
        (
            b"RIFF\x0c\x00\x00\x00WEBPVP8 \x00\x00\x00\x00",
            "corrupt WebP: VP8 frame header at offset 20 is invalid",
        ),
        (
            b"RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00" + bytes(10),
            "corrupt WebP: no image data chunk (VP8, VP8L or ANMF)",
        ),
    ],
)
def test_webp_structure_errors(data: bytes, message: str) -> None:
    with pytest.raises(ImageFormatError) as err:
        embed_caption(data, "tag")
    assert err.value.message == message


def test_png_without_image_data() -> None:
    data = make_bytes("png_rgb")
    ihdr_end = 8 + 25
    bare = data[:ihdr_end] + data[data.index(b"IEND") - 4 :]
    assert read_embedded(bare).caption is None
    with pytest.raises(ImageFormatError) as err:
        embed_caption(bare, "tag")
    assert err.value.message == "corrupt PNG: no IDAT chunk (no image data)"
