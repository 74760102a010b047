"""Near-duplicate images: perceptual hashes (the imagehash library, an optional extra),
groups within a stated distance, and moving the extras away, journaled.

Each image gets a 64-bit pHash (imagehash.phash: a DCT of the 32x32 greyscale image); two
images are near-duplicates when their hashes differ in at most `threshold` bits (default
6 of 64: resized, re-encoded or lightly edited copies; different poses differ by 20 or
more). JPEGs are decoded at a reduced size (Pillow's draft mode), which is all the hash
looks at. Groups are the connected sets of such pairs; each keeps its largest image (then
the first by name) and lists the others as extras. Nothing is ever deleted: `move_extras`
moves the extras and their sidecars (captions...) into another folder, after writing a
journal in the source folder, so a run stopped midway is completed by the next one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.dataset.scan import ImageEntry, natural_key, scan_folder
from kohya_orchestrator.errors import DatasetError, FileSystemError, InputError
from kohya_orchestrator.fsutil import atomic_write_text, fsync_dir

THRESHOLD = 6
JOURNAL_NAME = ".kohya-orch-dupes.json"


@dataclass(frozen=True)
class Group:
    """One set of near-identical images: the one kept and the extras (with distances)."""

    keep: Path
    extras: tuple[tuple[Path, int], ...]


def require_imagehash() -> None:
    """A clear refusal when the `dupes` extra is not installed."""
    try:
        import imagehash  # noqa: F401
    except ImportError as exc:
        raise InputError(
            "--duplicates needs the imagehash library, which is not installed.",
            "pip install 'kohya-orchestrator[dupes]' (or pip install imagehash)",
        ) from exc


def image_hash(path: Path) -> tuple[int, int]:
    """(the 64-bit pHash as an int, the image's pixel count) of one image."""
    import imagehash
    from PIL import Image

    with Image.open(path) as img:
        pixels = img.size[0] * img.size[1]
        img.draft("L", (128, 128))  # JPEG: decode at 1/2..1/8 size; others ignore it
        value = imagehash.phash(img)
    return int(str(value), 16), pixels


def group_hashes(hashes: dict[Path, tuple[int, int]], threshold: int = THRESHOLD) -> list[Group]:
    """The groups of near-identical images (pure): union of pairs within `threshold` bits."""
    paths = sorted(hashes, key=lambda p: natural_key(p.name))
    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    values = [hashes[p][0] for p in paths]
    for i, a in enumerate(values):
        for j in range(i + 1, len(values)):
            if (a ^ values[j]).bit_count() <= threshold:
                parent[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(len(paths)):
        members.setdefault(root(i), []).append(i)
    groups = []
    for found in members.values():
        if len(found) < 2:
            continue
        keep = max(found, key=lambda i: (hashes[paths[i]][1], -i))
        extras = tuple(
            (paths[i], (values[i] ^ values[keep]).bit_count()) for i in found if i != keep
        )
        groups.append(Group(paths[keep], extras))
    return sorted(groups, key=lambda g: natural_key(g.keep.name))


def find_duplicates(folder: Path, threshold: int = THRESHOLD) -> tuple[list[Group], list[str]]:
    """The near-duplicate groups of `folder`, and the images that could not be read."""
    require_imagehash()
    hashes: dict[Path, tuple[int, int]] = {}
    unreadable = []
    for entry in scan_folder(folder):
        try:
            hashes[entry.image] = image_hash(entry.image)
        except (OSError, ValueError) as exc:
            unreadable.append(f"{entry.image.name}: {exc}")
    return group_hashes(hashes, threshold), unreadable


def plan_moves(folder: Path, groups: Iterable[Group], target: Path) -> list[tuple[str, str]]:
    """(source, destination) of every extra and its sidecars; refuses clashes up front."""
    entries = {e.image: e for e in scan_folder(folder)}
    moves = []
    for group in groups:
        for extra, _ in group.extras:
            entry = entries.get(extra, ImageEntry(extra))
            for path in (entry.image, *entry.sidecars):
                moves.append((str(path), str(target / path.name)))
    clashes = [dst for _, dst in moves if os.path.lexists(dst)]
    if clashes:
        raise DatasetError(
            f"Cannot move the extras: {len(clashes)} file(s) already exist in {target}: "
            f"{', '.join(Path(c).name for c in clashes[:5])}; nothing was moved.",
            "Give another --move-to folder, or empty that one.",
        )
    return moves


def move_extras(folder: Path, moves: list[tuple[str, str]], target: Path) -> int:
    """Move the files (journaled in `folder`); the count moved. Completes a stopped run."""
    target.mkdir(parents=True, exist_ok=True)
    if os.stat(target).st_dev != os.stat(folder).st_dev:
        raise FileSystemError(
            f"{target} is on another file system than {folder}; nothing was moved.",
            "Give a --move-to folder on the same disk (files are moved, not copied).",
        )
    journal = folder / JOURNAL_NAME
    atomic_write_text(journal, json.dumps({"version": 1, "moves": moves}) + "\n")
    return _drive(folder, journal, moves)


def pending_moves(folder: Path) -> list[tuple[str, str]] | None:
    """The moves of a run that was stopped before it finished, if any."""
    journal = folder / JOURNAL_NAME
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
        return [(str(a), str(b)) for a, b in data["moves"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"The duplicates journal {journal} is damaged ({exc}).",
            "Check the --move-to folder by hand, then delete the journal.",
        ) from exc


def finish_pending(folder: Path) -> int:
    """Complete a stopped move (idempotent); the files moved now."""
    moves = pending_moves(folder)
    return 0 if moves is None else _drive(folder, folder / JOURNAL_NAME, moves)


def _drive(folder: Path, journal: Path, moves: list[tuple[str, str]]) -> int:
    moved = 0
    targets = set()
    for src, dst in moves:
        if not os.path.lexists(src) and os.path.lexists(dst):
            continue  # moved by the stopped run
        if os.path.lexists(dst) and not os.path.samefile(src, dst):
            raise DatasetError(f"{dst} appeared meanwhile; {src} was left in place.", None)
        # A hard link, then the old name removed: never replaces a file at the destination,
        # and a kill in between leaves both names of one file (the next run removes src).
        if not os.path.lexists(dst):
            os.link(src, dst)
        os.unlink(src)
        moved += 1
        targets.add(Path(dst).parent)
    for where in targets:
        fsync_dir(where)
    fsync_dir(folder)
    journal.unlink()
    fsync_dir(folder)
    return moved
