"""Test images of every kind the caption embedder meets, made with Pillow (and by hand).

API: `ALL_KINDS` (names), `KINDS[name]` (a Kind: content format, default extension, the exact
ImageFormatError message for files that must be refused, expected embed warnings, frames),
`image_bytes(kind, size=(64, 48))`, `make_image(kind, path)` (path is a file, or a folder to
put `default_name(kind)` in) and `GOOD_KINDS` / `BAD_KINDS`. Error messages with byte counts
are those of the default size. Readers for checks: `image_data(fmt, data)` (the compressed
image data that must never change), `frames(data)` (every decoded frame), `pillow_info`,
`xmp_caption`, `user_comment`.
"""

from __future__ import annotations

import io
import random
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageFile

GENERATION_INFO = (
    "masterpiece, 1girl, glasses\nNegative prompt: lowres, bad hands\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x48, Model: sd_xl_base_1.0"
)
FOREIGN_XMP = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 5.5.0">\n'
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    '  <rdf:Description rdf:about=""\n'
    '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
    '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
    '    xmp:Rating="4" xmp:CreatorTool="FakeCam 1.0">\n'
    "   <dc:description><rdf:Alt>"
    '<rdf:li xml:lang="x-default">old description</rdf:li></rdf:Alt></dc:description>\n'
    "   <dc:subject><rdf:Bag><rdf:li>old</rdf:li></rdf:Bag></dc:subject>\n"
    "   <dc:creator><rdf:Seq><rdf:li>Jane Doe</rdf:li></rdf:Seq></dc:creator>\n"
    "  </rdf:Description>\n"
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n" + " " * 200 + '\n<?xpacket end="w"?>'
).encode("utf-8")
ENTITY_XMP = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
)
BROKEN_XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>'
MAKER_TARGET = b"TARGET-DATA!"
MAKER_NOTE = b"FAKEMAKER\x00" + b"\x00\x00\x00\x00" + MAKER_TARGET + b"\x01\x02\x03\x04" * 8
XMP_APP1_ID = b"http://ns.adobe.com/xap/1.0/\x00"
JFIF_RANDOM = random.Random(3).randbytes(4096)

TRUNCATED_SCAN_WARNING = (
    "JPEG ends inside its image data (no end-of-image marker): the file is truncated; "
    "the caption was embedded but the picture may be incomplete"
)


@dataclass(frozen=True)
class Kind:
    """One kind of test file and what the embedder must do with it."""

    name: str
    ext: str
    format: str | None  # "jpeg" / "png" / "webp" by content; None when it must be refused
    error: str | None = None  # exact ImageFormatError message for refused files
    warnings: tuple[str, ...] = ()
    frames: int = 1
    generation_info: bool = False
    notes: str = ""


def _pattern(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A deterministic image with detail, so the encoders produce real data."""
    width, height = size
    rnd = random.Random(seed)
    base = Image.linear_gradient("L").resize(size)
    noise = Image.frombytes("L", size, rnd.randbytes(width * height))
    channels = {"R": base, "G": noise, "B": base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)}
    rgb = Image.merge("RGB", (channels["R"], channels["G"], channels["B"]))
    if mode == "RGBA":
        alpha = base.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return Image.merge("RGBA", (*rgb.split(), alpha))
    return rgb.convert(mode)


def _save(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def _icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _a1111_exif() -> bytes:
    import piexif
    import piexif.helper

    comment = piexif.helper.UserComment.dump(GENERATION_INFO, encoding="unicode")
    data: bytes = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})
    return data


def _camera_exif(size: tuple[int, int]) -> bytes:
    """Big-endian EXIF like a camera's: orientation, GPS, thumbnail, a maker note whose
    content holds an absolute offset into the block (so moving bytes would break it)."""
    import piexif

    thumb = _save(_pattern((16, 12)), "JPEG", quality=60)
    exif_dict = {
        "0th": {
            piexif.ImageIFD.Make: b"FakeCam",
            piexif.ImageIFD.Model: b"FC-1 Mark II",
            piexif.ImageIFD.Orientation: 6,
            piexif.ImageIFD.ImageDescription: b"OLYMPUS DIGITAL CAMERA         ",
            piexif.ImageIFD.Software: b"FakeCam firmware 1.0",
        },
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 10:00:00",
            piexif.ExifIFD.MakerNote: MAKER_NOTE,
            piexif.ExifIFD.UserComment: b"\x00" * 8 + b" " * 20,
            piexif.ExifIFD.PixelXDimension: size[0],
        },
        "GPS": {
            piexif.GPSIFD.GPSLatitudeRef: b"N",
            piexif.GPSIFD.GPSLatitude: ((35, 1), (0, 1), (0, 1)),
        },
        "1st": {
            piexif.ImageIFD.JPEGInterchangeFormat: 0,
            piexif.ImageIFD.JPEGInterchangeFormatLength: 0,
        },
        "thumbnail": thumb,
    }
    block = bytearray(piexif.dump(exif_dict))
    tiff_at = 6  # after "Exif\0\0"
    note = block.index(MAKER_NOTE)
    target = block.index(MAKER_TARGET, note) - tiff_at
    block[note + 10 : note + 14] = struct.pack(">I", target)
    return bytes(block)


def _insert_after_soi_app0(jpeg: bytes, segment: bytes, *, after_exif: bool = True) -> bytes:
    """Insert a raw segment after APP0 (and after an EXIF APP1 when present)."""
    pos = 2
    while jpeg[pos + 1] == 0xE0 or (after_exif and jpeg[pos + 1] == 0xE1):
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    return jpeg[:pos] + segment + jpeg[pos:]


def _app1(payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _insert_png_chunk(png: bytes, chunk: bytes, before: bytes = b"IDAT") -> bytes:
    at = png.index(before) - 4
    return png[:at] + chunk + png[at:]


def _png_rgb16(size: tuple[int, int]) -> bytes:
    """A 16-bit RGBA PNG written by hand (Pillow cannot write 16-bit colour)."""
    width, height = size
    rnd = random.Random(16)
    rows = b"".join(b"\x00" + rnd.randbytes(width * 8) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _frames(size: tuple[int, int], count: int, mode: str = "RGB") -> list[Image.Image]:
    return [_pattern(size, mode, seed=i) for i in range(count)]


def _jpeg_camera(size: tuple[int, int]) -> bytes:
    data = _save(_pattern(size), "JPEG", quality=90, exif=_camera_exif(size), icc_profile=_icc())
    return _insert_after_soi_app0(data, _app1(XMP_APP1_ID + FOREIGN_XMP))


def _webp_camera(size: tuple[int, int]) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 3  # orientation, little-endian block as Pillow writes it
    exif[0x010F] = "FakeCam"
    return _save(
        _pattern(size), "WEBP", quality=80, exif=exif.tobytes(), icc_profile=_icc(), xmp=FOREIGN_XMP
    )


def _png_foreign(size: tuple[int, int]) -> bytes:
    """PNG with iCCP, a foreign compressed XMP iTXt, and a Description chunk after IDAT."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "FakePaint 2")
    info.add_itxt("XML:com.adobe.xmp", FOREIGN_XMP.decode("utf-8"), zip=True)
    data = _save(_pattern(size), "PNG", pnginfo=info, icc_profile=_icc())
    at = data.index(b"IEND") - 4
    return data[:at] + _png_chunk(b"tEXt", b"Description\x00old description") + data[at:]


def _png_a1111(size: tuple[int, int]) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", GENERATION_INFO)
    return _save(_pattern(size), "PNG", pnginfo=info)


def _truncate_scan(data: bytes) -> bytes:
    sos = data.index(b"\xff\xda")
    return data[: sos + (len(data) - sos) // 2]


def _cut(data: bytes, at: int) -> bytes:
    return data[:at]


def _flip_idat(data: bytes) -> bytes:
    at = data.index(b"IDAT") + 10
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _bad_exif_jpeg(size: tuple[int, int]) -> bytes:
    data = bytearray(_save(_pattern(size), "JPEG", exif=_a1111_exif()))
    tiff = data.index(b"Exif\x00\x00") + 6
    data[tiff + 4 : tiff + 8] = b"\xff\xff\x00\x00"
    return bytes(data)


def _webp_bad_exif(size: tuple[int, int]) -> bytes:
    return _save(_pattern(size), "WEBP", exif=b"XX" + b"\x00" * 30)


def _fake_iso(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x00\x00mif1" + brand + b"\x00" * 64


Builder = Callable[[tuple[int, int]], bytes]

_BUILDERS: dict[str, tuple[Kind, Builder]] = {}


def _kind(kind: Kind, builder: Builder) -> None:
    _BUILDERS[kind.name] = (kind, builder)


_kind(Kind("jpeg_baseline", ".jpg", "jpeg"), lambda s: _save(_pattern(s), "JPEG", quality=85))
_kind(
    Kind("jpeg_progressive", ".jpg", "jpeg"),
    lambda s: _save(_pattern(s), "JPEG", quality=85, progressive=True),
)
_kind(Kind("jpeg_cmyk", ".jpg", "jpeg"), lambda s: _save(_pattern(s, "CMYK"), "JPEG"))
_kind(
    Kind("jpeg_camera", ".jpg", "jpeg", notes="EXIF(BE)+maker note+GPS+thumbnail+ICC+XMP"),
    _jpeg_camera,
)
_kind(
    Kind("jpeg_no_jfif", ".jpeg", "jpeg", notes="no APP0"),
    lambda s: (lambda d: d[:2] + d[20:])(_save(_pattern(s), "JPEG")),
)
_kind(
    Kind("jpeg_exif_le", ".jpg", "jpeg", notes="little-endian EXIF with orientation"),
    lambda s: _save(_pattern(s), "JPEG", exif=_le_exif()),
)
_kind(
    Kind(
        "jpeg_a1111",
        ".jpg",
        "jpeg",
        generation_info=True,
        warnings=(
            "kept the generation parameters in EXIF UserComment; the caption went to the "
            "other fields (--overwrite-generation-info replaces them)",
        ),
    ),
    lambda s: _save(_pattern(s), "JPEG", exif=_a1111_exif()),
)
_kind(
    Kind("jpeg_mpo", ".jpg", "jpeg", frames=2, notes="MPF with a second image"),
    lambda s: _save(_pattern(s), "MPO", save_all=True, append_images=[_pattern(s, seed=5)]),
)
_kind(
    Kind("jpeg_truncated_scan", ".jpg", "jpeg", warnings=(TRUNCATED_SCAN_WARNING,)),
    lambda s: _truncate_scan(_save(_pattern(s), "JPEG", quality=95)),
)
_kind(Kind("png_rgb", ".png", "png"), lambda s: _save(_pattern(s), "PNG"))
_kind(Kind("png_rgba", ".png", "png"), lambda s: _save(_pattern(s, "RGBA"), "PNG"))
_kind(
    Kind("png_gray16", ".png", "png", notes="16-bit greyscale"),
    lambda s: _save(_pattern(s, "L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"),
)
_kind(Kind("png_rgba16", ".png", "png", notes="16-bit RGBA, hand-written"), _png_rgb16)
_kind(
    Kind("png_palette", ".png", "png"),
    lambda s: _save(
        _pattern(s).convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0
    ),
)
_kind(
    Kind(
        "png_a1111",
        ".png",
        "png",
        generation_info=True,
        warnings=(
            "kept the generation parameters in the PNG 'parameters' text; the caption went to "
            "the other fields (--overwrite-generation-info replaces them)",
        ),
    ),
    _png_a1111,
)
_kind(Kind("png_foreign", ".png", "png", notes="iCCP, zipped XMP, text after IDAT"), _png_foreign)
_kind(
    Kind("png_apng", ".png", "png", frames=3),
    lambda s: _save(
        _pattern(s),
        "PNG",
        save_all=True,
        append_images=_frames(s, 3)[1:],
        duration=[100, 150, 200],
        loop=0,
    ),
)
_kind(
    Kind("png_as_jpg", ".jpg", "png", notes="PNG content, .jpg name"),
    lambda s: _save(_pattern(s), "PNG"),
)
_kind(Kind("webp_lossy", ".webp", "webp"), lambda s: _save(_pattern(s), "WEBP", quality=80))
_kind(Kind("webp_lossless", ".webp", "webp"), lambda s: _save(_pattern(s), "WEBP", lossless=True))
_kind(Kind("webp_alpha", ".webp", "webp"), lambda s: _save(_pattern(s, "RGBA"), "WEBP", quality=80))
_kind(
    Kind("webp_lossless_alpha", ".webp", "webp"),
    lambda s: _save(_pattern(s, "RGBA"), "WEBP", lossless=True),
)
_kind(
    Kind("webp_animated", ".webp", "webp", frames=3),
    lambda s: _save(
        _pattern(s),
        "WEBP",
        save_all=True,
        append_images=_frames(s, 3)[1:],
        duration=[100, 150, 200],
        lossless=True,
    ),
)
_kind(Kind("webp_camera", ".webp", "webp", notes="LE EXIF, ICC, foreign XMP"), _webp_camera)
_kind(
    Kind(
        "webp_a1111",
        ".webp",
        "webp",
        generation_info=True,
        warnings=(
            "kept the generation parameters in EXIF UserComment; the caption went to the "
            "other fields (--overwrite-generation-info replaces them)",
        ),
    ),
    lambda s: _save(_pattern(s), "WEBP", exif=_a1111_exif()),
)
_kind(Kind("webp_as_png", ".png", "webp"), lambda s: _save(_pattern(s), "WEBP"))


def _le_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    exif[0x010F] = "FakeCam"
    return exif.tobytes()


def _bad(name: str, ext: str, error: str, builder: Builder) -> None:
    _kind(Kind(name, ext, None, error=error), builder)


_bad("empty", ".jpg", "empty file (0 bytes)", lambda s: b"")
_bad(
    "random_bytes",
    ".jpg",
    "not a JPEG, PNG or WebP image (starts with fd 3f eb 3c 92 50 b7 97)",
    lambda s: JFIF_RANDOM,
)
_bad("gif_as_jpg", ".jpg", "unsupported image format: GIF", lambda s: _save(_pattern(s), "GIF"))
_bad("bmp_as_jpg", ".jpg", "unsupported image format: BMP", lambda s: _save(_pattern(s), "BMP"))
_bad("tiff_as_jpg", ".jpg", "unsupported image format: TIFF", lambda s: _save(_pattern(s), "TIFF"))
_bad("heic_as_jpg", ".jpg", "unsupported image format: HEIC/HEIF", lambda s: _fake_iso(b"heic"))
_bad("avif_as_jpg", ".jpg", "unsupported image format: AVIF", lambda s: _fake_iso(b"avif"))
_bad(
    "jpeg_truncated_header",
    ".jpg",
    "truncated JPEG: segment 0xFFE1 at offset 20 runs past the end of the file (382 > 60 bytes)",
    lambda s: _cut(_save(_pattern(s), "JPEG", exif=_a1111_exif()), 60),
)
_bad(
    "png_truncated",
    ".png",
    "truncated PNG: chunk IDAT at offset 33 runs past the end of the file (4634 > 2323 bytes)",
    lambda s: (lambda d: d[: len(d) // 2])(_save(_pattern(s), "PNG")),
)
_bad(
    "png_bad_crc",
    ".png",
    "corrupt PNG: chunk IDAT at offset 33 has a bad CRC",
    lambda s: _flip_idat(_save(_pattern(s), "PNG")),
)
_bad(
    "webp_riff_past_end",
    ".webp",
    "truncated WebP: RIFF size 2208 at offset 4 runs past the end of the file (2216 > 2206 bytes)",
    lambda s: (lambda d: d[:-10])(_save(_pattern(s), "WEBP")),
)
_bad(
    "jpeg_bad_exif",
    ".jpg",
    "malformed EXIF: IFD0 offset 4294901760 is outside the 352-byte block",
    _bad_exif_jpeg,
)
_bad(
    "jpeg_xmp_entity",
    ".jpg",
    "XMP packet contains a DTD/ENTITY declaration; refused (entity expansion risk)",
    lambda s: _save(_pattern(s), "JPEG", xmp=ENTITY_XMP),
)
_bad(
    "png_xmp_entity",
    ".png",
    "XMP packet contains a DTD/ENTITY declaration; refused (entity expansion risk)",
    lambda s: _insert_png_chunk(
        _save(_pattern(s), "PNG"),
        _png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + ENTITY_XMP),
    ),
)
_bad(
    "jpeg_bad_xmp",
    ".jpg",
    "malformed XMP: unbound prefix: line 1, column 36",
    lambda s: _save(_pattern(s), "JPEG", xmp=BROKEN_XMP),
)
_bad(
    "webp_bad_exif", ".webp", "malformed EXIF: unknown byte order 58 58 at offset 0", _webp_bad_exif
)


KINDS: dict[str, Kind] = {name: kind for name, (kind, _b) in _BUILDERS.items()}
ALL_KINDS: list[str] = list(KINDS)
GOOD_KINDS: list[str] = [name for name, kind in KINDS.items() if kind.format is not None]
BAD_KINDS: list[str] = [name for name, kind in KINDS.items() if kind.format is None]
ANIMATED_KINDS: list[str] = [name for name, kind in KINDS.items() if kind.frames > 1]


def image_bytes(kind: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """The bytes of one test file of `kind` (deterministic for a given size)."""
    return _BUILDERS[kind][1](size)


def default_name(kind: str) -> str:
    """A file name for `kind` with its (possibly lying) extension."""
    return kind + KINDS[kind].ext


def make_image(kind: str, path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """Write a test file of `kind` to `path` (or into folder `path`) and return its path."""
    target = path / default_name(kind) if path.is_dir() else path
    target.write_bytes(image_bytes(kind, size))
    return target


# Independent readers for tests: container walking written the simplest way, sharing no code
# with the library, so a library bug cannot hide itself.
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


def jpeg_image_data(data: bytes) -> bytes:
    """Everything from the first SOS marker on (all scans, trailers, MPF images)."""
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return data[pos:]


def jpeg_markers(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, first 32 payload bytes) of each segment before SOS."""
    out = []
    pos = 2
    while data[pos + 1] != 0xDA:
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        out.append((data[pos + 1], data[pos + 4 : pos + 4 + min(32, length - 2)]))
        pos += 2 + length
    return out


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    pos = 8
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((ctype, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if ctype == b"IEND":
            break
    return out


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    pos = 12
    end = 8 + struct.unpack("<I", data[4:8])[0]
    while pos < end:
        fourcc, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        out.append((fourcc, data[pos + 8 : pos + 8 + length]))
        pos += 8 + length + (length & 1)
    return out


def image_data(fmt: str, data: bytes) -> object:
    """The compressed image data that must never change."""
    if fmt == "jpeg":
        return jpeg_image_data(data)
    if fmt == "png":
        return [c for c in png_chunks(data) if c[0] not in TEXT_CHUNKS]
    return [c for c in webp_chunks(data) if c[0] not in (b"VP8X", b"EXIF", b"XMP ")]


@contextmanager
def _truncated_ok() -> Iterator[None]:
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def frames(data: bytes) -> list[tuple[str, tuple[int, int], bytes]]:
    """(mode, size, pixels) of every frame, decoded by Pillow."""
    out = []
    with _truncated_ok(), Image.open(io.BytesIO(data)) as im:
        for index in range(getattr(im, "n_frames", 1)):
            im.seek(index)
            im.load()
            out.append((im.mode, im.size, im.tobytes()))
    return out


def pillow_info(data: bytes) -> dict[str, object]:
    with _truncated_ok(), Image.open(io.BytesIO(data)) as im:
        return {str(key): value for key, value in im.info.items()}


def xmp_caption(packet: bytes | str) -> tuple[list[str], list[list[str]]]:
    """All dc:description x-default texts and all dc:subject bags in a packet."""
    raw = packet.encode("utf-8") if isinstance(packet, str) else packet
    root = ET.fromstring(raw)
    descriptions = [
        li.text or ""
        for d in root.iter(f"{DC}description")
        for li in d.iter(f"{RDF}li")
        if li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"
    ]
    subjects = [[li.text or "" for li in s.iter(f"{RDF}li")] for s in root.iter(f"{DC}subject")]
    return descriptions, subjects


def user_comment(raw: bytes, big_endian: bool) -> str:
    code, body = raw[:8], raw[8:]
    if code == b"UNICODE\x00":
        return body.decode("utf-16-be" if big_endian else "utf-16-le")
    return body.decode("ascii")
