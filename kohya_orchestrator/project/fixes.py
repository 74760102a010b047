"""`prepare`'s corrected copies: which source images sd-scripts would misread, and their copies.

`plan_fixes` reads every image's header (dataset.imagecheck; no pixel is decoded for an
image that needs nothing) and returns, for exactly the images with an issue, what DEST gets
instead of a link: a corrected copy (dataset.imagefix) named `<stem>.png` (`.jpg` for a
JPEG), carrying the caption. Its `signature` changes with the background colour and the
caption, so a copy is remade when either changes. HEIC/HEIF need pillow-heif: without it,
the plan is refused before anything is written.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.dataset.imagecheck import (
    NEEDS_HEIF,
    ImageIssue,
    image_issues,
    inspect_image,
    needs_conversion,
)
from kohya_orchestrator.dataset.imagefix import fix_image, fixed_suffix, parse_colour
from kohya_orchestrator.dataset.scan import ImageEntry
from kohya_orchestrator.errors import DatasetError, InputError, OrchError
from kohya_orchestrator.project.manifest import Link

# Copies made at once (decoding and encoding release the GIL).
FIX_WORKERS = max(2, min(4, os.cpu_count() or 1))
# Bump when the corrected copies change, so older ones are remade.
FIX_VERSION = 1


@dataclass(frozen=True)
class ImageFix:
    """One image that gets a corrected copy in DEST instead of a link."""

    source: Path
    suffix: str
    issues: tuple[ImageIssue, ...]
    caption: str | None
    signature: str

    def line(self) -> str:
        """`a.jpg: EXIF orientation 6: ...; transparency ...` for messages."""
        return f"{self.source.name}: " + "; ".join(i.message for i in self.issues)

    def remedy(self, background: str) -> str:
        """What the copy does about it: `upright, flattened on white`."""
        kind = self.suffix.lstrip(".").upper().replace("JPG", "JPEG")
        done = [_REMEDIES[i.kind].format(background=background, kind=kind) for i in self.issues]
        return ", ".join(dict.fromkeys(done))


_REMEDIES = {
    "format": "converted to {kind}",
    "orientation": "upright",
    "transparency": "flattened on {background}",
    "depth": "8-bit",
    "cmyk": "RGB",
    "animated": "first frame only",
}


def background_colour(text: str) -> tuple[int, int, int]:
    """--background as RGB; InputError when it is not a colour."""
    try:
        return parse_colour(text)
    except ValueError as exc:
        raise InputError(f"--background: {exc}.", "e.g. --background white or #202020") from None


def plan_fixes(
    entries: Iterable[ImageEntry], background: str, caption_suffixes: tuple[str, ...]
) -> tuple[dict[Path, ImageFix], list[str]]:
    """The images of `entries` that need a corrected copy, and the ones that cannot be read
    (one message each: they are linked as they are, and sd-scripts will stop on them)."""
    colour = background_colour(background)
    fixes: dict[Path, ImageFix] = {}
    unreadable: list[str] = []
    heif: list[str] = []
    for entry in entries:
        image = entry.image
        convert = needs_conversion(image)
        if image.suffix.lower() in NEEDS_HEIF and not _has_heif():
            heif.append(image.name)
            continue
        try:
            issues = tuple(image_issues(inspect_image(image), image.suffix))
        except OrchError as exc:
            if convert:
                raise DatasetError(exc.message, exc.hint) from exc
            unreadable.append(f"{image.name}: {exc.message}")
            continue
        if not issues:
            continue
        caption = _caption(entry, caption_suffixes)
        crc = zlib.crc32((caption or "").encode("utf-8"))
        # The background matters only to a copy with transparency.
        flat = any(i.kind == "transparency" for i in issues)
        bg = f" bg=#{bytes(colour).hex()}" if flat else ""
        signature = f"v{FIX_VERSION}{bg} caption={crc:08x}"
        fixes[image] = ImageFix(image, fixed_suffix(image), issues, caption, signature)
    if heif:
        raise DatasetError(
            f"{len(heif)} HEIC/HEIF image(s) need pillow-heif to be converted for sd-scripts, "
            f"and it is not installed: {', '.join(heif)}; nothing was changed.",
            "pip install 'kohya-orchestrator[heif]' (or pip install pillow-heif); or convert "
            "them to PNG/JPEG yourself, or move them out of the folder.",
        )
    return fixes, unreadable


def fixes_for(
    entries: list[ImageEntry],
    fix_images: bool,
    background: str,
    caption_suffixes: tuple[str, ...],
    warnings: list[str],
) -> dict[Path, ImageFix]:
    """`prepare`'s corrected copies; with `fix_images` off, a warning per image instead
    (appended to `warnings`): each is linked as it is, and the formats sd-scripts does not
    read are left out. Unreadable images are linked as they are (`plan` and `validate`
    name them)."""
    if fix_images:
        return plan_fixes(entries, background, caption_suffixes)[0]
    fixes = plan_fixes(
        [e for e in entries if not needs_conversion(e.image)], background, caption_suffixes
    )[0]
    warnings += [f"{f.line()} (--no-fix-images: linked as it is)" for f in fixes.values()]
    warnings += [
        f"{e.image.name}: sd-scripts does not read {e.image.suffix.lower()} files: left out "
        "of training (--no-fix-images)"
        for e in entries
        if needs_conversion(e.image)
    ]
    return {}


def start_fixes(
    fixes: dict[Path, ImageFix], links: Iterable[Link], background: str
) -> dict[str, Future[bytes]]:
    """Start making the corrected copies of `links` (those of mode "fixed") in threads:
    {target: future bytes}. Pillow and zlib release the GIL, so they overlap each other
    and the links made meanwhile."""
    wanted = [link for link in links if link.mode == "fixed" and link.source in fixes]
    if not wanted:
        return {}
    colour = background_colour(background)
    pool = ThreadPoolExecutor(max_workers=min(FIX_WORKERS, len(wanted)))
    try:
        return {
            link.target: pool.submit(
                lambda f: fix_image(f.source, f.caption, colour).data, fixes[link.source]
            )
            for link in wanted
        }
    finally:
        pool.shutdown(wait=False)


def _has_heif() -> bool:
    try:
        import pillow_heif  # noqa: F401
    except ImportError:
        return False
    return True


def _caption(entry: ImageEntry, suffixes: tuple[str, ...]) -> str | None:
    """The caption the copy carries: its `.txt` (else `.caption`), normalised; None if none."""
    from kohya_orchestrator.dataset.captions import normalise_caption

    for suffix in suffixes:
        for side in entry.sidecars:
            if side.name[len(entry.stem) :].lower() == suffix:
                try:
                    text = normalise_caption(side.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, OrchError):
                    continue
                if text:
                    return text
    return None
