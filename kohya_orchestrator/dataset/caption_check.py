"""Reading a folder's captions: the helpers planning shares, and the caption check table.

The check lists every image with its caption file and embedded caption, and flags what
is off.

When the trigger is not given, it is guessed from the captions themselves (see
`captions.guess_trigger`): the first tag more than half of the captions start with, plus
the tags that every one of those captions has next. When no first tag is that common, the
report says the trigger is unknown; `--trigger` removes the guess.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kohya_orchestrator import fsutil
from kohya_orchestrator.dataset.caption_report import FLAGS, CaptionCheck, CheckRow, TriggerSource
from kohya_orchestrator.dataset.captions import (
    Trigger,
    guess_trigger,
    normalise_caption,
    parse_trigger,
    split_tags,
    starts_with_trigger,
)
from kohya_orchestrator.dataset.imagecheck import image_issues, inspect_image
from kohya_orchestrator.dataset.names import fold_name
from kohya_orchestrator.dataset.rename import require_no_pending_rename
from kohya_orchestrator.dataset.scan import (
    IMAGE_EXTENSIONS,
    IMAGES_HINT,
    ImageEntry,
    scan_folder,
    shown_folder,
)
from kohya_orchestrator.errors import CaptionError, DatasetError, InputError, OrchError

__all__ = ["FLAGS", "CaptionCheck", "CheckRow", "TriggerSource", "check_captions"]

Iterate = Callable[[list[Any]], Iterable[Any]]
CaptionSource = Literal["txt", "embedded", "tags", "empty"]

FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP"}

_FORMAT_OF_SUFFIX = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".webp": "webp"}


@dataclass(frozen=True)
class FileStamp:
    """What a file looked like when it was read: inode, size, mtime and a checksum of its
    bytes (`stamp` is the part a stat shows, checked again just before a replacing rename).

    CRC-32 rather than a cryptographic hash: it guards against another program changing
    the file between planning and writing (which also changes size or mtime), not against
    an attacker, and it is several times cheaper than SHA-256 on large PNGs.
    """

    size: int
    mtime_ns: int
    crc32: int
    stamp: fsutil.Stamp | None = None


def normalise_ext(ext: str) -> str:
    """'.txt' or 'txt' -> '.txt'; InputError for an unusable caption extension."""
    value = ext if ext.startswith(".") else f".{ext}"
    body = value[1:]
    if not body or "/" in body or "\\" in body or "." in body or body.strip() != body:
        raise InputError(
            f"Not a usable caption extension: {ext!r}.",
            "Give a simple extension such as .txt or .caption.",
        )
    if value.lower() in IMAGE_EXTENSIONS:
        raise InputError(
            f"The caption extension {ext!r} is an image extension.",
            "Use .txt (what sd-scripts is told to read) or .caption.",
        )
    return value


def require_images(folder: Path) -> list[ImageEntry]:
    """The images of `folder` (see scan_folder); DatasetError when there are none."""
    entries = scan_folder(folder)
    if not entries:
        raise DatasetError(
            f"No images in {shown_folder(folder)}.",
            IMAGES_HINT,
        )
    return entries


def shared_stems(entries: list[ImageEntry]) -> dict[Path, str]:
    """Images whose stem another image shares (ignoring case and Unicode normalisation),
    with the message to show.

    Such images would share one caption file. Case is ignored because macOS and Windows
    folders are case-insensitive: `A.png` and `a.jpg` would share `A.txt` there; and
    normalisation because macOS sees `café` in NFC and in NFD (its own names) as one.
    """
    groups: dict[str, list[Path]] = {}
    for entry in entries:
        groups.setdefault(fold_name(entry.stem), []).append(entry.image)
    messages = {}
    for images in groups.values():
        if len(images) < 2:
            continue
        for image in images:
            others = ", ".join(p.name for p in images if p != image)
            messages[image] = (
                f"shares its stem with {others}: both would use the caption file "
                f"{image.stem}.*; rename one of them (kohya-orch rename)"
            )
    return messages


def read_stamped(path: Path) -> tuple[bytes, FileStamp]:
    """A file's bytes and its stamp, read through one descriptor; only a regular file (or
    a link to one) is opened (fsutil.NotRegularFileError otherwise, never a blocked read)."""
    data, stamp = fsutil.read_regular(path)
    return data, FileStamp(len(data), stamp.mtime_ns, zlib.crc32(data), stamp)


def dangling_link_problem(path: Path) -> str | None:
    """A message when `path` is a symbolic link to a file that does not exist."""
    if not path.is_symlink() or path.exists():
        return None
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"{path.name} is a link to a missing file ({target}); remove it or fix the link"


def decode_caption_file(data: bytes, name: str) -> str:
    """The text of a caption file; CaptionError if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptionError(
            f"{name} is not UTF-8 text (byte 0x{data[exc.start]:02X} at offset {exc.start})",
            f"Re-save {name} as UTF-8.",
        ) from exc


def mislabel_warning(path: Path, fmt: str) -> str | None:
    """A warning when the content's format does not match the file's extension."""
    expected = _FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if expected is None or expected == fmt:
        return None
    name = FORMAT_NAMES[fmt]
    return (
        f"is a {name} file named {path.suffix}; it is handled as {name} "
        f"(rename it to .{'jpg' if fmt == 'jpeg' else fmt} so other tools agree)"
    )


# Flag names (stable, for --json) and what they mean.
def caption_case_problem(entry: ImageEntry, ext: str) -> str | None:
    """A message when `<stem><ext>` is missing but a caption file differing only in the
    case of its extension (`p_1.TXT`) is there: sd-scripts would not read it, and writing
    a new `<stem><ext>` beside it would hide the user's caption."""
    caption_file = entry.image.parent / f"{entry.stem}{ext}"
    if os.path.lexists(caption_file):
        return None
    for side in entry.sidecars:
        if side.name[len(entry.stem) :].lower() == ext.lower():
            return (
                f"its caption file is {side.name}, but sd-scripts reads {caption_file.name}; "
                f"rename {side.name} to {caption_file.name}"
            )
    return None


@dataclass(frozen=True)
class _Read:
    image: Path
    caption_file: Path
    format: str | None
    txt: str | None
    embedded: str | None
    generation_info: bool
    flags: list[str]
    problems: list[str]


def check_captions(
    folder: Path,
    trigger: str | Trigger | None = None,
    ext: str = ".txt",
    *,
    iterate: Iterate | None = None,
) -> CaptionCheck:
    """Read every image's captions in `folder` and flag what is off (writes nothing)."""
    trig = parse_trigger(trigger) if isinstance(trigger, str) else trigger
    ext = normalise_ext(ext)
    require_no_pending_rename(folder, "captions")
    entries = require_images(folder)
    shared = shared_stems(entries)
    reads = []
    for entry in iterate(entries) if iterate else entries:
        read = _read_one(entry.image, folder / f"{entry.stem}{ext}")
        if case := caption_case_problem(entry, ext):
            read.flags.insert(0, "caption-case")
            read.problems.insert(0, case)
        if entry.image in shared:
            read.flags.insert(0, "shared-stem")
            read.problems.insert(0, shared[entry.image])
        reads.append(read)
    source: TriggerSource | None = "given" if trig is not None else None
    if trig is None:
        trig = guess_trigger(
            c for r in reads if (c := r.txt if r.txt is not None else r.embedded) is not None
        )
        source = "guessed" if trig is not None else None
    rows = []
    for r in reads:
        caption = r.txt if r.txt is not None else r.embedded
        if trig is not None and caption is not None and "unreadable" not in r.flags:
            try:
                ok = starts_with_trigger(split_tags(caption), trig)
            except CaptionError:
                ok = True  # already flagged as unreadable or untidy
            if not ok:
                r.flags.append("no-trigger")
                r.problems.append(f"does not start with the trigger '{trig.text}'")
            elif ok and _only_trigger(caption, trig):
                r.flags.append("trigger-only")
                r.problems.append(
                    "the caption is the trigger alone: add tags that describe the image "
                    "(kohya-orch tag, or caption --tags)"
                )
        rows.append(
            CheckRow(
                r.image,
                r.caption_file,
                r.format,
                r.txt,
                r.embedded,
                r.generation_info,
                tuple(r.flags),
                tuple(r.problems),
            )
        )
    return CaptionCheck(folder, ext, trig, source, tuple(rows))


def _read_one(image: Path, caption_file: Path) -> _Read:
    from kohya_orchestrator.dataset.metadata import read_embedded

    read = _Read(image, caption_file, None, None, None, False, [], [])
    flags, problems = read.flags, read.problems
    fmt = embedded = txt = None
    generation_info = False
    try:
        data = read_stamped(image)[0]
        if data[:2] == b"BM" and image.suffix.lower() == ".bmp":
            fmt = "bmp"  # no metadata: the caption file is all there is (below)
        else:
            info = read_embedded(data)
            fmt, embedded = info.format, info.caption
            generation_info = info.generation_info is not None
            label = mislabel_warning(image, info.format)
            if label:
                flags.append("extension")
                problems.append(label)
        issues = image_issues(inspect_image(image), image.suffix)
        if issues:
            flags.append("misread")
            problems.extend(f"{i.message} (prepare makes a corrected copy)" for i in issues)
    except (OrchError, OSError) as exc:
        flags.append("unreadable")
        problems.append(exc.message if isinstance(exc, OrchError) else str(exc.strerror))
    dangling = dangling_link_problem(caption_file)
    try:
        if dangling is not None:
            flags.append("unreadable")
            problems.append(dangling)
        elif caption_file.exists():
            txt = decode_caption_file(read_stamped(caption_file)[0], caption_file.name)
            split_tags(txt)
    except CaptionError as exc:
        flags.append("unreadable")
        problems.append(f"{caption_file.name}: {exc.message}")
        txt = None
    except OSError as exc:
        flags.append("unreadable")
        problems.append(f"{caption_file.name}: {exc.strerror}")
        txt = None
    if "unreadable" not in flags:
        _flag_captions(caption_file, txt, txt if fmt == "bmp" else embedded, flags, problems)
    return _Read(image, caption_file, fmt, txt, embedded, generation_info, flags, problems)


def _only_trigger(caption: str, trigger: Trigger) -> bool:
    try:
        return tuple(split_tags(caption)) == trigger.tokens
    except CaptionError:
        return False


def _flag_captions(
    caption_file: Path,
    txt: str | None,
    embedded: str | None,
    flags: list[str],
    problems: list[str],
) -> None:
    has_txt = txt is not None and bool(split_tags(txt))
    has_embedded = embedded is not None and bool(split_tags(embedded))
    if not has_txt and not has_embedded:
        flags.append("no-caption")
        what = f"{caption_file.name} is empty" if txt is not None else f"no {caption_file.name}"
        problems.append(f"no caption ({what}, nothing embedded)")
        return
    if not has_txt:
        flags.append("no-caption-file")
        problems.append(f"caption embedded, but no {caption_file.name} (sd-scripts reads that)")
    elif not has_embedded:
        flags.append("not-embedded")
        problems.append("caption not embedded in the image")
    elif normalise_caption(txt or "") != normalise_caption(embedded or ""):
        flags.append("mismatch")
        problems.append(f"{caption_file.name} and the embedded caption differ")
    if has_txt and txt is not None:
        line = txt[:-1] if txt.endswith("\n") else txt
        if line != normalise_caption(txt):
            flags.append("untidy")
            problems.append(f"{caption_file.name} is not one clean line (run caption to tidy it)")


def read_caption_file(path: Path) -> tuple[str | None, FileStamp | None]:
    """A caption file's text and stamp; (None, None) when there is none."""
    if dangling := dangling_link_problem(path):
        raise CaptionError(dangling, None)
    if not os.path.lexists(path):
        return None, None
    if not path.is_file():
        raise CaptionError(f"{path.name} exists but is not a file", None)
    data, stamp = read_stamped(path)
    return decode_caption_file(data, path.name), stamp


def choose_source(
    old_txt: str | None, embedded: str | None, txt_name: str
) -> tuple[CaptionSource, str]:
    """Where an image's caption comes from: its caption file, else the embedded one."""
    # A caption file that is empty (or only commas and spaces) counts as no caption.
    if old_txt is not None:
        try:
            if split_tags(old_txt):
                return "txt", old_txt
        except CaptionError as exc:
            raise CaptionError(f"{txt_name}: {exc.message}", exc.hint) from exc
    if embedded is not None:
        try:
            if split_tags(embedded):
                return "embedded", embedded
        except CaptionError as exc:
            raise CaptionError(f"embedded caption: {exc.message}", exc.hint) from exc
    return "empty", ""
