"""The rename journal: a crash-safe record of a batch of renames, to complete or reverse it.

A batch moves each file `src -> tmp -> dst` in two phases (all to temporary names, then
all to their final names), so no final name is ever taken while another file still
needs it. The journal is written and fsynced before the first rename and marked
finished after the last; a run that finds it unfinished completes it (or reverses it)
first. Where each file is comes from the folder listing itself (exact names, so a
case-insensitive file system cannot confuse `P_1.jpg` with `p_1.jpg`), which makes
completing or reversing idempotent: it can be interrupted and run again at any point.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import FileSystemError, JournalError
from kohya_orchestrator.fsutil import TEMP_PREFIX, atomic_write_text, fsync_dir, read_regular_text

JOURNAL_NAME = ".kohya-orch-rename.json"
# Distinct from fsutil.TEMP_PREFIX: a killed run's atomic-write temps are deleted by the
# next lock holder, while these temporary names hold the user's own files mid-rename.
RENAME_TEMP_PREFIX = ".kohya-orch-rename-"
JOURNAL_VERSION = 1

# Journal states: a batch is applied toward dst, or undone toward src.
APPLYING = "applying"
APPLIED = "applied"
UNDOING = "undoing"
UNDONE = "undone"
_STATES = (APPLYING, APPLIED, UNDOING, UNDONE)


@dataclass(frozen=True)
class JournalMove:
    """One file of a batch: its old name, its temporary name, its new name."""

    src: str
    tmp: str
    dst: str


@dataclass(frozen=True)
class Journal:
    """A batch of renames in one folder and how far it got."""

    state: str
    moves: tuple[JournalMove, ...]
    prefix: str = ""
    token: str = field(default_factory=lambda: _token())

    @property
    def pending(self) -> bool:
        """True when a run was interrupted: the folder is between two states."""
        return self.state in (APPLYING, UNDOING)


def _token() -> str:
    # os.urandom rather than secrets: importing secrets pulls in hashlib at start-up.
    return os.urandom(4).hex()


def temp_name(token: str, index: int) -> str:
    """The hidden temporary name of the `index`-th file of a batch."""
    return f"{RENAME_TEMP_PREFIX}{token}-{index}"


def new_journal(pairs: Sequence[tuple[str, str]], prefix: str = "") -> Journal:
    """An APPLYING journal for renaming each (src, dst) pair."""
    token = _token()
    moves = tuple(JournalMove(s, temp_name(token, i), d) for i, (s, d) in enumerate(pairs))
    return Journal(APPLYING, moves, prefix, token)


def journal_path(folder: Path) -> Path:
    return folder / JOURNAL_NAME


def read_journal(folder: Path) -> Journal | None:
    """The journal of `folder`, or None when there is none."""
    path = journal_path(folder)
    try:
        raw = read_regular_text(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError(f"Cannot read the rename journal {path}: {exc.strerror}.") from exc
    try:
        data = json.loads(raw)
        state = data["state"]
        if data.get("version") != JOURNAL_VERSION or state not in _STATES:
            raise ValueError(f"unknown version or state {state!r}")
        moves = tuple(JournalMove(str(s), str(t), str(d)) for s, t, d in data["moves"])
        for m in moves:
            for name in (m.src, m.tmp, m.dst):
                if not name or "/" in name or "\\" in name or name in (".", ".."):
                    raise ValueError(f"not a plain file name: {name!r}")
        return Journal(state, moves, str(data.get("prefix", "")), str(data["token"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise JournalError(
            f"The rename journal {path} is damaged ({exc}).",
            "Check the folder by hand; delete the journal once every file has its name.",
        ) from exc


def write_journal(folder: Path, journal: Journal) -> None:
    """Write the journal atomically and fsync it and the folder before returning."""
    data: dict[str, Any] = {
        "version": JOURNAL_VERSION,
        "tool": "kohya-orch rename",
        "prefix": journal.prefix,
        "state": journal.state,
        "token": journal.token,
        "moves": [[m.src, m.tmp, m.dst] for m in journal.moves],
    }
    text = json.dumps(data, ensure_ascii=False, indent=0)
    atomic_write_text(journal_path(folder), text + "\n")


def locate(moves: Sequence[JournalMove], listing: set[str]) -> tuple[list[str], list[str]]:
    """Where each file is ("src", "tmp" or "dst") by exact name; and the problems found."""
    where: list[str] = []
    problems: list[str] = []
    for m in moves:
        found = [k for k, n in (("src", m.src), ("tmp", m.tmp), ("dst", m.dst)) if n in listing]
        if len(found) == 1:
            where.append(found[0])
            continue
        where.append("")
        if not found:
            problems.append(f"{m.src} -> {m.dst}: the file is missing under both names")
        elif found == ["src", "dst"]:
            problems.append(f"{m.src} -> {m.dst}: both names exist now")
        else:
            names = ", ".join(getattr(m, k) for k in found)
            problems.append(f"{m.src} -> {m.dst}: found more than once ({names})")
    return where, problems


def check_drive(folder: Path, journal: Journal, *, forward: bool) -> None:
    """Raise JournalError, changing nothing, if the batch cannot be driven to its goal."""
    _where, problems = locate(journal.moves, set(os.listdir(folder)))
    if problems:
        goal = "completed" if forward else "reversed"
        raise JournalError(
            f"The rename journal in {folder} cannot be {goal}; nothing was changed:\n  - "
            + "\n  - ".join(problems),
            "Put the files listed back under one of their names, then run the command again.",
        )


def drive(folder: Path, journal: Journal, *, forward: bool) -> Iterator[int]:
    """Move every file of the batch to dst (forward) or back to src, via its temp name.

    Yields after each step (a rename or a folder fsync): each yield is a point where a
    kill must leave a recoverable folder. Checks the whole batch before the first step.
    """
    check_drive(folder, journal, forward=forward)
    where, _ = locate(journal.moves, set(os.listdir(folder)))
    start, goal = ("src", "dst") if forward else ("dst", "src")
    for m, at in zip(journal.moves, where, strict=True):
        if at == start:
            os.rename(folder / getattr(m, start), folder / m.tmp)
            yield 1
    fsync_dir(folder)
    yield 1
    for m, at in zip(journal.moves, where, strict=True):
        if at == goal:
            continue
        target = folder / getattr(m, goal)
        # os.rename replaces silently on POSIX: never let it take someone else's file.
        if os.path.lexists(target):
            raise JournalError(
                f"{target} appeared while renaming; it was not overwritten.",
                "Move that file away, then run the command again to finish.",
            )
        os.rename(folder / m.tmp, target)
        yield 1
    fsync_dir(folder)


def finish(folder: Path, journal: Journal, *, forward: bool) -> Iterator[int]:
    """Mark the journal pending in the right direction, drive it, mark it finished.

    An OSError (disk full, no permission) becomes a FileSystemError saying how to go on:
    once the pending journal is on disk, the same command completes the batch.
    """
    pending = APPLYING if forward else UNDOING
    if journal.state != pending:
        journal = replace(journal, state=pending)
        check_drive(folder, journal, forward=forward)
        try:
            write_journal(folder, journal)
        except OSError as exc:
            raise journal_write_error(folder, exc, forward=forward) from exc
        yield 1
    try:
        yield from drive(folder, journal, forward=forward)
        write_journal(folder, replace(journal, state=APPLIED if forward else UNDONE))
    except OSError as exc:
        raise stopped_error(folder, journal, exc, forward=forward) from exc
    yield 1


def os_reason(exc: OSError) -> str:
    """The OS's words for an error ("No space left on device")."""
    return exc.strerror or str(exc)


def journal_write_error(folder: Path, exc: OSError, *, forward: bool) -> FileSystemError:
    """The error for a journal that could not be written before anything moved."""
    what = "renamed" if forward else "restored"
    return FileSystemError(
        f"Cannot write the rename journal {journal_path(folder)}: {os_reason(exc)}; "
        f"nothing was {what}.",
        "Free some space or fix the folder's permissions, then run the command again.",
    )


def stopped_error(
    folder: Path, journal: Journal, exc: OSError, *, forward: bool
) -> FileSystemError:
    """The error for a batch stopped midway: which file, why, and how to finish it."""
    where = _failed_move(journal, exc, forward=forward)
    if forward:
        return FileSystemError(
            f"Renaming in {folder} stopped at {where}: {os_reason(exc)}. "
            f"The journal {JOURNAL_NAME} records every move; no file is lost.",
            "Free some space or fix the folder's permissions, then run the same command "
            f"again to finish, or `kohya-orch rename --undo {folder}` to restore the old names.",
        )
    return FileSystemError(
        f"Restoring the old names in {folder} stopped at {where}: {os_reason(exc)}. "
        f"The journal {JOURNAL_NAME} records every move; no file is lost.",
        "Free some space or fix the folder's permissions, then run "
        f"`kohya-orch rename --undo {folder}` again to finish.",
    )


def _failed_move(journal: Journal, exc: OSError, *, forward: bool) -> str:
    """The file an OSError was about, by the names the user knows (never a temp name)."""
    for raw in (exc.filename, exc.filename2):
        if raw is None:
            continue
        name = os.path.basename(os.fsdecode(raw))
        if name == JOURNAL_NAME or name.startswith(TEMP_PREFIX):
            return f"the journal {JOURNAL_NAME}"
        for m in journal.moves:
            if name in (m.src, m.tmp, m.dst):
                return f"{m.src} -> {m.dst}" if forward else f"{m.dst} -> {m.src}"
    return f"the journal {JOURNAL_NAME}"
