"""Lossless caption embedding: every image kind keeps its image data and reads back the caption."""

from __future__ import annotations

import io
import struct
from functools import cache

import piexif
import piexif.helper
import pytest
from imagefactory import (
    ANIMATED_KINDS,
    FOREIGN_XMP,
    GENERATION_INFO,
    GOOD_KINDS,
    KINDS,
    MAKER_NOTE,
    MAKER_TARGET,
    frames,
    image_bytes,
    image_data,
    jpeg_markers,
    pillow_info,
    png_chunks,
    user_comment,
    webp_chunks,
    xmp_caption,
)
from PIL import Image

from kohya_orchestrator.dataset.metadata import (
    detect_format,
    embed_caption,
    read_embedded,
)

CAPTION = "takeru_higa, glasses, black hair, suit"
CAPTION_B = "takeru_higa, smiling"
JAPANESE = "比嘉健, 眼鏡, 黒髪, スーツ"
EMOJI = "takeru_higa, 😀 smile, 🎌"
CAPTION_FIELDS = {"exif", "xmp", "Description", "parameters", "XML:com.adobe.xmp"}
CHANGED_INFO = CAPTION_FIELDS | {"mp"}  # the MP index records the primary image's new size


@cache
def original(kind: str) -> bytes:
    return image_bytes(kind)


@cache
def embedded(kind: str, caption: str = CAPTION) -> bytes:
    return embed_caption(original(kind), caption).data


def tags_of(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",") if t.strip()]


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_format_detected_by_content(kind: str) -> None:
    assert detect_format(original(kind)) == KINDS[kind].format


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_image_data_and_pixels_identical(kind: str) -> None:
    fmt = KINDS[kind].format
    assert fmt is not None
    before, after = original(kind), embedded(kind)
    assert after != before
    assert image_data(fmt, after) == image_data(fmt, before)
    decoded = frames(after)
    assert decoded == frames(before)
    assert len(decoded) == KINDS[kind].frames
    if fmt == "jpeg":  # JFIF APP0 (when present) stays the first segment
        assert (jpeg_markers(after)[0] == jpeg_markers(before)[0]) is (before[3] == 0xE0)


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_idempotent_and_reversible(kind: str) -> None:
    first = embed_caption(original(kind), CAPTION)
    assert first.changed
    again = embed_caption(first.data, CAPTION)
    assert again.changed is False
    assert again.data is first.data
    other = embed_caption(first.data, CAPTION_B)
    assert other.changed
    back = embed_caption(other.data, CAPTION)
    assert back.data == first.data
    assert list(first.warnings) == list(KINDS[kind].warnings)


@pytest.mark.parametrize("kind", GOOD_KINDS)
@pytest.mark.parametrize("caption", [CAPTION, JAPANESE, EMOJI], ids=["ascii", "japanese", "emoji"])
def test_caption_reads_back_from_every_field(kind: str, caption: str) -> None:
    kind_info = KINDS[kind]
    data = embedded(kind, caption)
    info = read_embedded(data)
    assert info.caption == caption
    assert info.format == kind_info.format
    assert info.fields["XMP dc:description"] == caption
    assert info.fields["XMP dc:subject"] == ", ".join(tags_of(caption))
    assert (info.generation_info == GENERATION_INFO) is kind_info.generation_info
    pil = pillow_info(data)
    packet = pil.get("xmp") or pil.get("XML:com.adobe.xmp")
    assert isinstance(packet, (bytes, str))
    assert xmp_caption(packet) == ([caption], [tags_of(caption)])
    expected_comment = GENERATION_INFO if kind_info.generation_info else caption
    if kind_info.format == "png":
        assert pil["Description"] == caption
        assert pil["parameters"] == expected_comment
        return
    if kind_info.format == "jpeg":
        exif = piexif.load(data)
        zeroth, exif_ifd = exif["0th"], exif["Exif"]
        big_endian = data[data.index(b"Exif\x00\x00") + 6] == ord("M")
        description = zeroth[piexif.ImageIFD.ImageDescription]
        comment = exif_ifd[piexif.ExifIFD.UserComment]
        xp_comment, xp_keywords = zeroth[0x9C9C], zeroth[0x9C9E]
        if big_endian:  # how A1111/Forge read it
            assert piexif.helper.UserComment.load(comment) == expected_comment
    else:
        pil_exif = Image.open(io.BytesIO(data)).getexif()
        big_endian = pil_exif.endian == ">"
        description = pil_exif[0x010E].encode("latin-1")
        comment = pil_exif.get_ifd(0x8769)[0x9286]
        xp_comment, xp_keywords = bytes(pil_exif[0x9C9C]), bytes(pil_exif[0x9C9E])
    assert description == caption.encode("utf-8") + b"\x00" or description == caption.encode()
    assert user_comment(comment, big_endian) == expected_comment
    assert bytes(xp_comment).decode("utf-16-le").rstrip("\x00") == caption
    assert bytes(xp_keywords).decode("utf-16-le").rstrip("\x00") == ";".join(tags_of(caption))


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_other_metadata_survives(kind: str) -> None:
    before, after = original(kind), embedded(kind)
    info_before, info_after = pillow_info(before), pillow_info(after)
    for key, value in info_before.items():
        if key not in CHANGED_INFO:
            assert info_after.get(key) == value, key
    if KINDS[kind].generation_info and KINDS[kind].format == "png":
        assert info_after["parameters"] == GENERATION_INFO
    with Image.open(io.BytesIO(before)) as im:
        exif_before = im.getexif()
        exif_ifd_before = dict(exif_before.get_ifd(0x8769))
    with Image.open(io.BytesIO(after)) as im:
        exif_after = im.getexif()
        exif_ifd_after = dict(exif_after.get_ifd(0x8769))
    ours = {0x010E, 0x9C9C, 0x9C9E, 0x8769}
    assert {k: v for k, v in exif_before.items() if k not in ours} == {
        k: v for k, v in exif_after.items() if k not in ours
    }
    uc = 0x9286
    if KINDS[kind].generation_info:
        assert exif_ifd_after.get(uc) == exif_ifd_before.get(uc)
    exif_ifd_before.pop(uc, None)
    exif_ifd_after.pop(uc, None)
    assert exif_ifd_before == exif_ifd_after


def test_camera_jpeg_keeps_maker_note_offsets_thumbnail_gps_icc_and_xmp() -> None:
    before, after = original("jpeg_camera"), embedded("jpeg_camera")
    old, new = piexif.load(before), piexif.load(after)
    assert new["0th"][piexif.ImageIFD.Orientation] == 6
    assert new["0th"][piexif.ImageIFD.Make] == b"FakeCam"
    assert new["GPS"] == old["GPS"]
    assert new["1st"] == old["1st"]
    assert new["thumbnail"] == old["thumbnail"]
    note = new["Exif"][piexif.ExifIFD.MakerNote]
    assert note == MAKER_NOTE[:10] + note[10:14] + MAKER_NOTE[14:]
    # The maker note's absolute offset still points at its data: nothing moved.
    tiff = after[after.index(b"Exif\x00\x00") + 6 :]
    (target,) = struct.unpack(">I", note[10:14])
    assert tiff[target : target + len(MAKER_TARGET)] == MAKER_TARGET
    assert pillow_info(after)["icc_profile"] == pillow_info(before)["icc_profile"]
    packet = pillow_info(after)["xmp"]
    assert isinstance(packet, bytes)
    assert b'xmp:Rating="4"' in packet and b"<rdf:li>Jane Doe</rdf:li>" in packet
    assert xmp_caption(packet) == ([CAPTION], [tags_of(CAPTION)])
    assert read_embedded(before).fields["EXIF ImageDescription"].startswith("OLYMPUS")
    # JFIF APP0 stays first, then our EXIF.
    markers = jpeg_markers(after)
    assert markers[0][0] == 0xE0 and markers[0][1].startswith(b"JFIF")
    assert markers[1][0] == 0xE1 and markers[1][1].startswith(b"Exif")


def test_exif_tail_does_not_grow_on_repeated_edits() -> None:
    first = embedded("jpeg_camera")
    longer = embed_caption(first, CAPTION + ", extra tag").data
    shorter = embed_caption(longer, "x").data
    assert len(shorter) < len(first) < len(longer)
    assert embed_caption(shorter, CAPTION).data == first


def test_foreign_xmp_merged_not_duplicated() -> None:
    before = original("png_foreign")
    assert read_embedded(before).fields["XMP dc:description"] == "old description"
    assert read_embedded(before).caption is None
    after = embedded("png_foreign")
    packet = pillow_info(after)["XML:com.adobe.xmp"]
    assert isinstance(packet, str)
    assert xmp_caption(packet) == ([CAPTION], [tags_of(CAPTION)])
    assert 'xmp:CreatorTool="FakeCam 1.0"' in packet
    assert FOREIGN_XMP.decode().split("<dc:creator>")[1].split("</dc:creator>")[0] in packet


@pytest.mark.parametrize("kind", ["png_rgb", "png_apng", "png_foreign", "png_a1111"])
def test_png_text_chunks_before_image_data(kind: str) -> None:
    types = [c[0] for c in png_chunks(embedded(kind))]
    first_image = min(types.index(t) for t in (b"IDAT", b"fcTL") if t in types)
    texts = [i for i, t in enumerate(types) if t in (b"tEXt", b"iTXt")]
    assert texts and max(texts) < first_image


def test_png_ascii_uses_text_and_non_ascii_uses_itxt() -> None:
    ascii_types = [c for c in png_chunks(embedded("png_rgb")) if c[0] == b"tEXt"]
    assert [c[1].split(b"\x00")[0] for c in ascii_types] == [b"Description", b"parameters"]
    jp = png_chunks(embedded("png_rgb", JAPANESE))
    assert [c[1].split(b"\x00")[0] for c in jp if c[0] == b"iTXt"] == [
        b"Description",
        b"parameters",
        b"XML:com.adobe.xmp",
    ]


def test_png_16bit_mode_kept() -> None:
    assert frames(embedded("png_gray16"))[0][0] == "I;16"
    ihdr = png_chunks(embedded("png_rgba16"))[0][1]
    assert ihdr[8:10] == bytes([16, 6])


@pytest.mark.parametrize(
    ("kind", "flags"),
    [("webp_lossy", 0x0C), ("webp_lossless", 0x0C), ("webp_lossless_alpha", 0x1C)],
)
def test_simple_webp_becomes_extended_with_canvas(kind: str, flags: int) -> None:
    vp8x = webp_chunks(embedded(kind))[0]
    assert vp8x[0] == b"VP8X"
    assert vp8x[1][0] == flags
    width = int.from_bytes(vp8x[1][4:7], "little") + 1
    height = int.from_bytes(vp8x[1][7:10], "little") + 1
    assert (width, height) == (64, 48)


def _timing(data: bytes) -> list[tuple[object, object]]:
    with Image.open(io.BytesIO(data)) as im:
        out = []
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            im.load()
            out.append((im.info.get("duration"), im.info.get("loop")))
        return out


@pytest.mark.parametrize("kind", ANIMATED_KINDS)
def test_animation_frames_and_timing_kept(kind: str) -> None:
    timing = _timing(embedded(kind))
    assert timing == _timing(original(kind))
    assert len(timing) == KINDS[kind].frames


@pytest.mark.parametrize("kind", ["jpeg_a1111", "png_a1111", "webp_a1111"])
def test_generation_info_overwritten_only_when_asked(kind: str) -> None:
    result = embed_caption(original(kind), CAPTION, overwrite_generation_info=True)
    assert result.warnings == []
    info = read_embedded(result.data)
    assert info.generation_info is None
    assert info.caption == CAPTION
    assert GENERATION_INFO not in info.fields.values()
    # Once overwritten, the field is ours: later edits replace it without a warning.
    later = embed_caption(result.data, CAPTION_B)
    assert later.warnings == []
    assert read_embedded(later.data).generation_info is None


def test_crlf_becomes_lf() -> None:
    data = embed_caption(original("png_rgb"), "a, b\r\nc").data
    assert read_embedded(data).caption == "a, b\nc"


def _mp_index(data: bytes) -> tuple[int, str, int]:
    """(TIFF start of the MPF block, byte order, offset of the MP entry list in it)."""
    mpf = data.index(b"MPF\x00") + 4
    tiff = data[mpf:]
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    entries = [tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i] for i in range(count)]
    mp_entry = next(e for e in entries if struct.unpack(order + "H", e[:2])[0] == 0xB002)
    return mpf, order, struct.unpack(order + "I", mp_entry[8:12])[0]


def _check_mp_index(data: bytes) -> None:
    """The MP index must give the primary image's size and the second image's offset."""
    mpf, order, where = _mp_index(data)
    size, offset = struct.unpack(order + "II", data[mpf + where + 4 : mpf + where + 12])
    assert offset == 0
    (second,) = struct.unpack(order + "I", data[mpf + where + 24 : mpf + where + 28])
    assert data[mpf + second : mpf + second + 3] == b"\xff\xd8\xff"
    assert data[size - 2 : size] == b"\xff\xd9"


def test_mpo_second_image_still_found() -> None:
    before, after = original("jpeg_mpo"), embedded("jpeg_mpo")
    assert len(after) > len(before)
    assert frames(after) == frames(before)
    _check_mp_index(before)
    _check_mp_index(after)


def test_mpo_with_xmp_after_the_mp_index() -> None:
    """A segment that grows after the MPF segment shifts the second image's offset too."""
    data = original("jpeg_mpo")
    mpf = data.index(b"MPF\x00") - 4
    mpf_end = mpf + 2 + struct.unpack(">H", data[mpf + 2 : mpf + 4])[0]
    xmp = b"http://ns.adobe.com/xap/1.0/\x00" + FOREIGN_XMP
    segment = b"\xff\xe1" + struct.pack(">H", len(xmp) + 2) + xmp
    moved = bytearray(data[:mpf_end] + segment + data[mpf_end:])
    # Correct the index by hand for the inserted segment, so only our edit is under test.
    tiff, order, where = _mp_index(bytes(moved))
    for at in (tiff + where + 4, tiff + where + 24):  # primary size, second image's offset
        (value,) = struct.unpack(order + "I", moved[at : at + 4])
        moved[at : at + 4] = struct.pack(order + "I", value + len(segment))
    _check_mp_index(bytes(moved))
    fixed = embed_caption(bytes(moved), CAPTION).data
    _check_mp_index(fixed)
    assert frames(fixed) == frames(data)
    longer = embed_caption(fixed, CAPTION + ", " + "x" * 500).data
    _check_mp_index(longer)
    assert frames(longer) == frames(data)


def test_read_embedded_on_untouched_files() -> None:
    info = read_embedded(original("jpeg_baseline"))
    assert (info.caption, info.generation_info, info.fields, info.warnings) == (None, None, {}, [])
    a1111 = read_embedded(original("png_a1111"))
    assert a1111.generation_info == GENERATION_INFO
    assert a1111.fields == {"PNG parameters": GENERATION_INFO}


def test_tail_not_reused_when_another_tool_wrote_after_it() -> None:
    """A GPS IFD appended after our tail by another tool must survive the next edit."""
    data = embedded("jpeg_camera")
    seg = data.index(b"Exif\x00\x00") - 4
    seg_end = seg + 2 + struct.unpack(">H", data[seg + 2 : seg + 4])[0]
    tiff = bytearray(data[seg + 10 : seg_end])
    (ifd0,) = struct.unpack(">I", tiff[4:8])
    (count,) = struct.unpack(">H", tiff[ifd0 : ifd0 + 2])
    gps_entry = next(
        ifd0 + 2 + 12 * i
        for i in range(count)
        if struct.unpack(">H", tiff[ifd0 + 2 + 12 * i : ifd0 + 4 + 12 * i])[0] == 0x8825
    )
    (gps,) = struct.unpack(">I", tiff[gps_entry + 8 : gps_entry + 12])
    gps_size = 2 + 12 * struct.unpack(">H", tiff[gps : gps + 2])[0] + 4
    tiff[gps_entry + 8 : gps_entry + 12] = struct.pack(">I", len(tiff))
    tiff += tiff[gps : gps + gps_size]
    payload = b"Exif\x00\x00" + bytes(tiff)
    moved = data[:seg] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    moved += data[seg_end:]
    gps_before = piexif.load(moved)["GPS"]
    assert gps_before == piexif.load(original("jpeg_camera"))["GPS"]
    after = embed_caption(moved, CAPTION_B).data
    assert piexif.load(after)["GPS"] == gps_before
    assert read_embedded(after).caption == CAPTION_B


def test_damaged_block_of_ours_is_kept_as_foreign_and_edits_stay_idempotent() -> None:
    """A block of ours whose dc namespace was altered is no longer ours: kept, not matched."""
    data = embedded("jpeg_baseline").replace(b"dc/elements/1.1/", b"dc/elements/1>1/", 1)
    first = embed_caption(data, CAPTION_B)
    assert read_embedded(first.data).caption == CAPTION_B
    assert embed_caption(first.data, CAPTION_B).changed is False


def _a1111_png_info(data: bytes) -> str | None:
    """What the A1111/Forge "PNG Info" tab shows, following its read_info_from_image."""
    with Image.open(io.BytesIO(data)) as im:
        params = im.info.get("parameters")
        if "exif" in im.info:
            exif = piexif.load(im.info["exif"])
            comment = exif.get("Exif", {}).get(piexif.ExifIFD.UserComment, b"")
            try:
                params = piexif.helper.UserComment.load(comment)
            except ValueError:
                params = comment.decode("utf-8", errors="ignore")
    return params if isinstance(params, str) else None


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_a1111_png_info_shows_the_caption_or_kept_generation_info(kind: str) -> None:
    expected = GENERATION_INFO if KINDS[kind].generation_info else CAPTION
    assert _a1111_png_info(embedded(kind)) == expected
