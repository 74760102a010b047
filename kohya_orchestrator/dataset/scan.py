"""Finding the images of a dataset folder and the sidecar files that belong to each."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kohya_orchestrator.errors import DatasetError
from kohya_orchestrator.sdscripts.concepts import IMAGE_SUFFIXES

# Images people have that sd-scripts does not read: `prepare` converts them to PNG copies,
# rename and caption leave them alone and say so. HEIC/HEIF need the pillow-heif extra.
CONVERTIBLE_SUFFIXES = (".heic", ".heif", ".avif", ".gif", ".tif", ".tiff")

# What sd-scripts trains on (sdscripts/concepts.py), in any case here: the user's folders
# may hold `.PNG`; `prepare` lower-cases the suffix in DEST.
IMAGE_EXTENSIONS = frozenset(IMAGE_SUFFIXES)

# The hint when a folder has no images (one wording for rename, caption and prepare).
IMAGES_HINT = "Images are files ending in .png, .jpg, .jpeg, .webp or .bmp (any case)."

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key where digit runs compare as numbers: img2 < img10; case-insensitive."""
    parts: list[tuple[int, int | str]] = []
    for i, chunk in enumerate(_DIGITS.split(name)):
        if i % 2:
            parts.append((0, int(chunk)))
        elif chunk:
            parts.append((1, chunk.casefold()))
    parts.append((2, name))  # ties broken by the exact name, so the order is total
    return tuple(parts)


def is_image_name(name: str, *, convertible: bool = False) -> bool:
    """True for a file name with one of the image extensions, in any case (with
    `convertible`, also the formats `prepare` converts)."""
    if name.startswith("."):
        return False
    suffix = Path(name).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or (convertible and suffix in CONVERTIBLE_SUFFIXES)


def left_alone(folder: Path) -> list[str]:
    """The files of `folder` in a format sd-scripts does not read (HEIC, AVIF, GIF, TIFF),
    naturally sorted: rename and caption leave them alone and say so."""
    names = (e.name for e in folder.iterdir() if _is_regular(e))
    return sorted(
        (n for n in names if is_image_name(n, convertible=True) and not is_image_name(n)),
        key=natural_key,
    )


@dataclass(frozen=True)
class ImageEntry:
    """One image and the other files of the same stem beside it (captions, latents...)."""

    image: Path
    sidecars: tuple[Path, ...] = field(default=())

    @property
    def stem(self) -> str:
        return self.image.stem


def shown_folder(folder: Path) -> str:
    """A folder as messages name it: absolute, so `.` never reads as "No images in .."."""
    return os.path.abspath(folder)


def undecodable(name: str) -> bool:
    """True for a file name whose bytes are not valid UTF-8 (Python keeps them as lone
    surrogates): it cannot go into a journal, a manifest or a settings file."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escaped(name: str) -> str:
    """A file name as messages show it: bytes that are not UTF-8 as \\xNN escapes."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def require_folder(folder: Path) -> Path:
    """Return `folder` if it is an existing directory, else raise a DatasetError."""
    if not folder.exists():
        raise DatasetError(
            f"Folder not found: {folder}", "Check the path, or cd into the image folder."
        )
    if not folder.is_dir():
        raise DatasetError(f"Not a folder: {folder}", "Give the folder that holds the images.")
    return folder


def scan_folder(folder: Path, *, convertible: bool = False) -> list[ImageEntry]:
    """The images directly in `folder` (not subfolders), naturally sorted, with sidecars.

    A sidecar is any other regular file whose name is `<image stem>.<anything>` and is
    not itself an image. Hidden files (dot-prefixed) are ignored. When two images share a
    stem, both list the same sidecars; callers that move files refuse that case. With
    `convertible`, HEIC, AVIF, GIF and TIFF files are images too (`prepare` converts them).
    """
    require_folder(folder)
    names = sorted((e.name for e in folder.iterdir() if _is_regular(e)), key=natural_key)
    return group_sidecars(folder, names, convertible=convertible)


def group_sidecars(
    folder: Path, names: Iterable[str], *, convertible: bool = False
) -> list[ImageEntry]:
    """Pure grouping of a folder listing into images and their sidecars."""
    names = list(names)
    images = [n for n in names if is_image_name(n, convertible=convertible)]
    by_stem: dict[str, list[str]] = {}
    for n in names:
        if (
            n.startswith(".")
            or is_image_name(n, convertible=convertible)
            or "." not in n.lstrip(".")
        ):
            continue
        by_stem.setdefault(_stem_of_sidecar(n), []).append(n)
    entries = []
    for img in images:
        stem = Path(img).stem
        side = sorted(by_stem.get(stem, []), key=natural_key)
        entries.append(ImageEntry(folder / img, tuple(folder / s for s in side)))
    return entries


def _stem_of_sidecar(name: str) -> str:
    # `a.b.txt` belongs to image `a.b.png`: the sidecar's stem is all before the last dot.
    return name.rsplit(".", 1)[0]


def _is_regular(entry: Path) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False
