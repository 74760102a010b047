"""Renaming a folder of images to `PREFIX_<n>`: a pure plan, then a journaled apply.

Numbering rules (chosen so that a second run changes nothing):
- Images already named `PREFIX_<digits>` (any extension) keep their names, whatever
  their padding; their numbers are taken.
- The other images, in natural order of their current names, get the numbers after
  the highest taken one (1, 2, ... in a fresh folder). Gaps are not refilled, so images
  added later always sort after the earlier ones.
- New numbers are zero-padded to the width of the highest number in the folder after
  the rename, or to the widest existing `PREFIX_<digits>` if that is wider: 9 images
  give `_1`..`_9`, 10 to 99 give `_01`..`_99`. Adding images to a folder of `_1`..`_9`
  later names the new ones `_10`, `_11`...; natural sort keeps the order right.
- Every other file of an image's stem (`.txt`, `.caption`, `.npz`, ...) moves with it.
  Image extensions and sidecar suffixes are lower-cased on the way (sd-scripts and
  `caption_extension = ".txt"` match case-sensitively). A kept image's sidecars get
  lower-case suffixes too, when no other file's name differs from theirs only by case.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kohya_orchestrator.dataset import journal as jr
from kohya_orchestrator.dataset.names import fold_name, validate_file_prefix
from kohya_orchestrator.dataset.scan import (
    IMAGES_HINT,
    ImageEntry,
    escaped,
    group_sidecars,
    natural_key,
    require_folder,
    shown_folder,
    undecodable,
)
from kohya_orchestrator.errors import DatasetError, JournalError, PlanConflictError
from kohya_orchestrator.fsutil import NAME_MAX

TOO_LONG_END = f" (at most {NAME_MAX})"


@dataclass(frozen=True)
class RenameMove:
    """One file to rename inside the folder (names, not paths)."""

    src: str
    dst: str
    is_image: bool


@dataclass(frozen=True)
class RenamePlan:
    """What `rename` would do in one folder; computing it touches nothing."""

    folder: Path
    prefix: str
    width: int
    moves: tuple[RenameMove, ...]
    kept: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def images_renamed(self) -> int:
        return sum(1 for m in self.moves if m.is_image)

    @property
    def sidecars_renamed(self) -> int:
        return sum(1 for m in self.moves if not m.is_image)

    @property
    def images(self) -> int:
        return self.images_renamed + len(self.kept)


@dataclass(frozen=True)
class Listing:
    """A folder's entries by exact name: regular files, and everything else."""

    files: tuple[str, ...]
    others: tuple[str, ...] = ()


def list_folder(folder: Path) -> Listing:
    """The folder's entries; symlinks to files count as files (they are renamed as links)."""
    files: list[str] = []
    others: list[str] = []
    with os.scandir(folder) as it:
        for entry in it:
            try:
                regular = entry.is_file()
            except OSError:
                regular = False
            (files if regular else others).append(entry.name)
    return Listing(tuple(files), tuple(others))


def plan_rename(folder: Path, listing: Listing, prefix: str) -> RenamePlan:
    """The rename plan for a folder listing (pure). Problems are collected, not raised."""
    entries = group_sidecars(folder, sorted(listing.files, key=natural_key))
    numbered = re.compile(re.escape(prefix) + r"_(\d+)")
    kept: list[str] = []
    taken: list[int] = []
    widest = 0
    todo = []
    for entry in entries:
        match = numbered.fullmatch(entry.stem)
        if match:
            kept.append(entry.image.name)
            taken.append(int(match.group(1)))
            widest = max(widest, len(match.group(1)))
        else:
            todo.append(entry)
    first = max(taken, default=0) + 1
    last = first + len(todo) - 1
    width = max(len(str(max(last, first - 1, 1))), widest)

    moves: list[RenameMove] = []
    for number, entry in enumerate(todo, start=first):
        stem = f"{prefix}_{number:0{width}d}"
        moves.append(RenameMove(entry.image.name, stem + entry.image.suffix.lower(), True))
        for side in entry.sidecars:
            suffix = side.name[len(entry.stem) :]
            moves.append(RenameMove(side.name, stem + suffix.lower(), False))

    present = set(listing.files) | set(listing.others)
    moves += _lower_kept_sidecars(entries, set(kept), present)
    problems = _undecodable(moves) + _shared_stems(entries, set(kept)) + _too_long(moves)
    problems += _collisions(listing, moves)
    return RenamePlan(folder, prefix, width, tuple(moves), tuple(kept), tuple(problems))


def _lower_kept_sidecars(
    entries: list[ImageEntry], kept: set[str], present: set[str]
) -> list[RenameMove]:
    """`p_1.TXT` -> `p_1.txt` beside a kept `p_1.png`, as for renamed images.

    Only when that is unambiguous: the stem is the image's alone and no other file's name
    differs from the sidecar's only by case. Otherwise the file is left as it is
    (caption reports it)."""
    counts: dict[str, int] = {}
    for e in entries:
        counts[fold_name(e.stem)] = counts.get(fold_name(e.stem), 0) + 1
    folded: dict[str, int] = {}  # `p_1.TXT` beside `p_1.txt` or `p_1.Txt` stays as it is
    for name in present:
        folded[fold_name(name)] = folded.get(fold_name(name), 0) + 1
    moves = []
    for e in entries:
        if e.image.name not in kept or counts[fold_name(e.stem)] > 1:
            continue
        for side in e.sidecars:
            suffix = side.name[len(e.stem) :]
            lower = e.stem + suffix.lower()
            if lower != side.name and folded[fold_name(lower)] == 1:
                moves.append(RenameMove(side.name, lower, False))
    return moves


def _shared_stems(entries: Iterable[ImageEntry], kept: set[str]) -> list[str]:
    # Folded as macOS compares names: IMG_1.jpg and img_1.png share img_1.txt there.
    by_stem: dict[str, list[ImageEntry]] = {}
    for e in entries:
        by_stem.setdefault(fold_name(e.stem), []).append(e)
    return [
        f"{' and '.join(e.image.name for e in group)} share the stem {group[0].stem!r} "
        "(one caption file for two images)"
        for group in by_stem.values()
        if len(group) > 1 and not all(e.image.name in kept for e in group)
    ]


def _undecodable(moves: Iterable[RenameMove]) -> list[str]:
    # Checked first: such a name cannot go into the journal, so nothing may move.
    return [
        f"{escaped(m.src)}: the name is not valid UTF-8 (shown with \\x escapes); rename it "
        "by hand first"
        for m in moves
        if undecodable(m.src)
    ]


def _too_long(moves: Iterable[RenameMove]) -> list[str]:
    # Checked here, not left to the OS: ENAMETOOLONG midway would stop a half-done batch.
    problems = []
    for m in moves:
        size = len(os.fsencode(m.dst))
        if size > NAME_MAX:
            problems.append(f"{m.src} -> {m.dst}: the new name is {size} bytes long{TOO_LONG_END}")
    return problems


def _collisions(listing: Listing, moves: list[RenameMove]) -> list[str]:
    problems: list[str] = []
    sources = {m.src for m in moves}
    present = set(listing.files) | set(listing.others)
    for m in moves:
        if m.dst in present and m.dst not in sources:
            problems.append(f"{m.src} -> {m.dst}: {m.dst} already exists and is not renamed")
    # The folder after the rename, folded as macOS compares names.
    after: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(present - sources):
        after.setdefault(fold_name(name), []).append((name, name))
    for m in moves:
        after.setdefault(fold_name(m.dst), []).append((m.src, m.dst))
    for group in after.values():
        if len(group) < 2 or all(src == dst for src, dst in group):
            continue
        finals = sorted({dst for _, dst in group})
        origin = ", ".join(src if src == dst else f"{src} -> {dst}" for src, dst in group)
        if len(finals) == 1:
            if any(src == dst for src, dst in group):
                continue  # already reported above as an existing target
            problems.append(f"{len(group)} files would be named {finals[0]}: {origin}")
        else:
            problems.append(
                f"{' and '.join(finals)} differ only by case or accents, one name on macOS: "
                + origin
            )
    return problems


def plan_folder(folder: Path, prefix: str) -> RenamePlan:
    """Validate the prefix, list `folder` and plan (reads the folder, changes nothing)."""
    validate_file_prefix(prefix)
    require_folder(folder)
    plan = plan_rename(folder, list_folder(folder), prefix)
    if plan.images == 0:
        raise DatasetError(
            f"No images in {shown_folder(folder)}.",
            IMAGES_HINT,
        )
    return plan


def require_clean(plan: RenamePlan) -> None:
    """Raise PlanConflictError listing every problem of the plan."""
    if plan.problems:
        count = len(plan.problems)
        hint = "Move, rename or delete the files listed, then run the command again."
        if any(p.endswith(TOO_LONG_END) for p in plan.problems):
            hint = "Use a shorter prefix; " + hint[0].lower() + hint[1:]
        raise PlanConflictError(
            f"Cannot rename in {plan.folder}: {count} problem{'s' if count > 1 else ''} "
            "found, nothing was changed.",
            plan.problems,
            hint,
        )


def iter_apply(plan: RenamePlan) -> Iterator[int]:
    """Apply a clean plan; yields after each step (see journal.drive). Steps, in order:
    journal written, each file to its temp name, fsync, each file to its new name,
    journal marked applied."""
    require_clean(plan)
    if not plan.moves:
        return
    pending = jr.read_journal(plan.folder)
    if pending is not None and pending.pending:
        raise JournalError(
            f"An interrupted rename in {plan.folder} must be completed first.",
            "Run the command again; it completes the interrupted rename before planning.",
        )
    present = set(os.listdir(plan.folder))
    if any(m.src not in present or m.dst in present for m in plan.moves):
        raise JournalError(
            f"{plan.folder} changed since the rename was planned; nothing was changed.",
            "Run the command again.",
        )
    journal = jr.new_journal([(m.src, m.dst) for m in plan.moves], plan.prefix)
    try:
        jr.write_journal(plan.folder, journal)
    except OSError as exc:
        raise jr.journal_write_error(plan.folder, exc, forward=True) from exc
    yield 1
    yield from jr.finish(plan.folder, journal, forward=True)


def apply_rename(plan: RenamePlan) -> RenamePlan:
    """Apply a clean plan to the folder; return it."""
    for _ in iter_apply(plan):
        pass
    return plan


def pending_journal(folder: Path) -> jr.Journal | None:
    """The folder's journal if a rename or undo was interrupted there, else None."""
    journal = jr.read_journal(folder)
    return journal if journal is not None and journal.pending else None


def require_no_pending_rename(folder: Path, command: str) -> None:
    """DatasetError when a rename in `folder` was interrupted: its files are half-moved
    (some under temp names), so `command` would read the wrong stems."""
    if pending_journal(require_folder(folder)) is not None:
        raise DatasetError(
            f"A rename in {folder} was interrupted.",
            f"Run `kohya-orch rename PREFIX {folder}` to finish it (or --undo), then {command}.",
        )


def complete_pending(folder: Path) -> jr.Journal | None:
    """Finish an interrupted rename (or undo) in `folder`; return its journal, or None."""
    journal = pending_journal(folder)
    if journal is None:
        return None
    for _ in jr.finish(folder, journal, forward=journal.state == jr.APPLYING):
        pass
    return journal


def listing_after(folder: Path, journal: jr.Journal) -> Listing:
    """The folder's listing as it will be once a pending journal is finished (pure-ish)."""
    listing = list_folder(folder)
    forward = journal.state == jr.APPLYING
    files = set(listing.files)
    for m in journal.moves:
        files -= {m.src, m.tmp, m.dst}
        files.add(m.dst if forward else m.src)
    return Listing(tuple(files), listing.others)


def undo_journal(folder: Path) -> jr.Journal:
    """The journal `--undo` would reverse, or JournalError when there is nothing to undo."""
    require_folder(folder)
    journal = jr.read_journal(folder)
    if journal is None or not journal.moves:
        raise JournalError(f"Nothing to undo in {folder}: no rename was recorded there.")
    if journal.state == jr.UNDONE:
        raise JournalError(f"Nothing to undo in {folder}: the last rename was already undone.")
    jr.check_drive(folder, journal, forward=False)
    return journal


def iter_undo(folder: Path) -> Iterator[int]:
    """Reverse the last rename (finished or interrupted) in `folder`, step by step."""
    journal = undo_journal(folder)
    yield from jr.finish(folder, journal, forward=False)
