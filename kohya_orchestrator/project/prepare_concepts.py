"""`prepare`'s source folders: every concept's images, its folder in DEST, its checks.

The first image folder goes to `img/<repeats>_<name>`, each further concept to
`img/<repeats>_<class tokens>` (the project's name when none is given); regularisation
folders to `reg/<repeats>_<class tokens>` (the class prompt when none is given). Two
concepts that would share a folder are refused: sd-scripts would read them as one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.config.concepts import Concept
from kohya_orchestrator.dataset.names import fold_name, validate_file_prefix
from kohya_orchestrator.dataset.scan import IMAGES_HINT, ImageEntry, scan_folder, shown_folder
from kohya_orchestrator.errors import DatasetError, LayoutError


@dataclass(frozen=True)
class SourceFolder:
    """One folder of images and where its links go in DEST."""

    path: Path  # the real path of the source folder
    subdir: str  # `img/7_hakone`, relative to DEST
    entries: list[ImageEntry]
    is_reg: bool
    concept: Concept

    @property
    def repeats(self) -> int:
        return self.concept.repeats


def is_inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_folders(images: Path | None, dest: Path, reg: Path | None) -> None:
    """Refuse DEST inside a source folder or a source folder inside DEST (symlinks resolved)."""
    real_dest = dest.resolve()
    for what, folder in (("images", images), ("regularisation", reg)):
        if folder is None:
            continue
        real = folder.resolve()
        if is_inside(real_dest, real):
            raise LayoutError(
                f"DEST {dest} is inside the {what} folder {folder}.",
                "Choose a DEST outside the image folder, e.g. next to it.",
            )
        if is_inside(real, real_dest):
            raise LayoutError(
                f"The {what} folder {folder} is inside DEST {dest}.",
                "Keep the source images outside DEST; prepare links them in.",
            )


def source_folders(
    train: list[Concept], reg: list[Concept], dest: Path, name: str, class_prompt: str | None
) -> list[SourceFolder]:
    """Scan every source folder and name its DEST folder; the checks of each on the way."""
    out: list[SourceFolder] = []
    seen: dict[str, Path] = {}
    for is_reg, concepts in ((False, train), (True, reg)):
        default = (class_prompt or "") if is_reg else name
        for concept in concepts:
            tokens = concept.class_tokens or default
            validate_file_prefix(tokens, what="class prompt" if is_reg else "class tokens")
            real = Path(os.path.realpath(os.path.expanduser(concept.images)))
            entries = scan_folder(real, convertible=True)
            if not entries:
                what = "the regularisation folder " if is_reg else ""
                raise DatasetError(
                    f"No images in {what}{shown_folder(Path(concept.images))}.",
                    IMAGES_HINT,
                )
            check_folders(None if is_reg else real, dest, real if is_reg else None)
            subdir = f"{'reg' if is_reg else 'img'}/{concept.folder_name(tokens)}"
            other = seen.setdefault(fold_name(subdir), real)
            if other != real:
                raise LayoutError(
                    f"{other} and {real} would both go to {subdir}/, and sd-scripts would "
                    "read them as one concept.",
                    f"Give one its own repeats or class tokens, e.g. --images {concept.images}"
                    f":{concept.repeats}:{tokens}_2",
                )
            if any(s.path == real and s.is_reg == is_reg for s in out):
                continue  # the same folder given twice under the same name
            resolved = Concept(str(real), concept.repeats, concept.class_tokens)
            out.append(SourceFolder(real, subdir, entries, is_reg, resolved))
    return out
