"""The concept folders of a kohya `train_data_dir`, read the way sd-scripts reads them.

The one scanner every command uses (lint, plan, preflight, the run record, the smoke run).
From library/config_util.py (generate_dreambooth_subsets_config_by_subdirs): every subfolder
`<repeats>_<class tokens>` counts when `int()` of the text before the first `_` is at least
1 (`5_` is 5 repeats and no class tokens); a folder without a leading integer is skipped
with a warning, one with 0 (or fewer) repeats silently. From library/train_util.py
glob_images: images are the files matching `*` + one of IMAGE_EXTENSIONS, which lists each
extension in lower and in upper case only (the glob is case-sensitive, so `.Png` is never
picked up), and `*` never matches a name starting with a dot (`._x.png`). A caption is the
image path without its extension plus the caption extension (os.path.splitext).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# library/train_util.py IMAGE_EXTENSIONS (library/dataset.py at 6721028c), without the
# .avif / .jxl that only an optional Pillow plugin adds.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SD_IMAGE_EXTENSIONS = frozenset([*IMAGE_SUFFIXES, *(s.upper() for s in IMAGE_SUFFIXES)])
# Why sd-scripts skips a folder (ConceptFolder.skipped).
NO_REPEATS = "no leading <repeats>_"
ZERO_REPEATS = "repeats 0"


@dataclass
class ConceptFolder:
    """One subfolder of train_data_dir or reg_data_dir."""

    path: Path
    repeats: int
    class_tokens: str
    images: list[Path] = field(default_factory=list)
    # Why sd-scripts skips it ("" when it is used): NO_REPEATS or ZERO_REPEATS.
    skipped: str = ""
    # Names sd-scripts' glob picks up that are not readable files (a link whose target is
    # gone, a folder named like an image): sd-scripts stops when it loads them.
    broken: list[Path] = field(default_factory=list)

    def uncaptioned(self, caption_extension: str) -> list[Path]:
        """The images that have no caption file of `caption_extension`."""
        return [p for p in self.images if not caption_path(p, caption_extension).is_file()]


def caption_path(image: Path, caption_extension: str) -> Path:
    """The caption file sd-scripts reads for `image`: `os.path.splitext(image)[0] + ext`."""
    return Path(os.path.splitext(image)[0] + caption_extension)


def parse_repeats(name: str) -> tuple[int, str]:
    """(repeats, class tokens) of a folder name; repeats 0 when it has no leading integer."""
    tokens = name.split("_")
    try:
        repeats = int(tokens[0])
    except ValueError:
        return 0, ""
    return repeats, "_".join(tokens[1:])


def _is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot > 0 and not name.startswith(".") and name[dot:] in SD_IMAGE_EXTENSIONS


def list_images(folder: Path) -> list[Path]:
    """The images sd-scripts reads from one folder (not recursive), sorted by path."""
    return scan_images(folder)[0]


def scan_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images, broken) of one folder: the glob's matches that are files, and the others."""
    names: list[str] = []
    broken: list[str] = []
    with os.scandir(folder) as it:
        for entry in it:
            if _is_image_name(entry.name):
                (names if entry.is_file() else broken).append(entry.path)
    # sd-scripts sorts the path strings; sorting strings is also far faster than Paths.
    names.sort()
    broken.sort()
    return [Path(n) for n in names], [Path(n) for n in broken]


def scan_concepts(base: Path, *, with_images: bool = True) -> list[ConceptFolder]:
    """Every subfolder of `base`, used or skipped, sorted by name."""
    folders = []
    with os.scandir(base) as it:
        subdirs = sorted((Path(e.path) for e in it if e.is_dir()), key=lambda p: p.name)
    for sub in subdirs:
        repeats, tokens = parse_repeats(sub.name)
        folder = ConceptFolder(sub, repeats, tokens)
        if repeats < 1:
            try:
                int(sub.name.split("_")[0])
                folder.skipped = ZERO_REPEATS
            except ValueError:
                folder.skipped = NO_REPEATS
        if with_images:
            folder.images, folder.broken = scan_images(sub)
        folders.append(folder)
    return folders


def used_concepts(base: Path) -> list[ConceptFolder]:
    """The folders sd-scripts trains on (the skipped ones left out), with their images."""
    return [c for c in scan_concepts(base) if not c.skipped]
