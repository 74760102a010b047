"""The concept folders of a kohya `train_data_dir`, read the way sd-scripts' config_util does.

A subfolder `<repeats>_<class tokens>` counts when `int()` of the text before the first `_`
is at least 1; others are skipped (sd-scripts warns for a missing integer, is silent for 0).
Images are the files sd-scripts' glob_images finds: exactly these extensions, lower or upper
case (the glob is case-sensitive, so `.Png` is not picked up), never hidden files (`._x.png`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SD_IMAGE_EXTENSIONS = frozenset(
    [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP"]
)


@dataclass
class ConceptFolder:
    """One subfolder of train_data_dir or reg_data_dir."""

    path: Path
    repeats: int
    class_tokens: str
    images: list[Path] = field(default_factory=list)
    # Why sd-scripts skips it ("" when it is used).
    skipped: str = ""


def parse_repeats(name: str) -> tuple[int, str]:
    """(repeats, class tokens) of a folder name; repeats 0 when sd-scripts ignores it."""
    tokens = name.split("_")
    try:
        repeats = int(tokens[0])
    except ValueError:
        return 0, ""
    return repeats, "_".join(tokens[1:])


def list_images(folder: Path) -> list[Path]:
    """The images sd-scripts reads from one folder (not recursive), sorted by path."""
    names = []
    with os.scandir(folder) as it:
        for entry in it:
            # glob's "*" skips names starting with "." (macOS "._x.png" files too).
            dot = entry.name.rfind(".")
            if (
                dot > 0
                and not entry.name.startswith(".")
                and entry.name[dot:] in SD_IMAGE_EXTENSIONS
                and entry.is_file()
            ):
                names.append(entry.path)
    # sd-scripts sorts the path strings; sorting strings is also far faster than Paths.
    names.sort()
    return [Path(n) for n in names]


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
                folder.skipped = "repeats 0"
            except ValueError:
                folder.skipped = "no leading <repeats>_"
        if with_images:
            folder.images = list_images(sub)
        folders.append(folder)
    return folders
