"""DEST/.kohya-orch-prepare.json: the files `prepare` made, and how to tell one is still as
prepare left it (so that only those are ever removed or replaced).

Each record holds the file's source and link mode and, for hard links and copies, the
stat fields that identify it. A record is written before its file is made
(`expected_record`, which already describes the file that will be made), so a kill in
between never leaves a file nobody owns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import LayoutError
from kohya_orchestrator.fsutil import atomic_write_text, read_regular_text

MANIFEST_NAME = ".kohya-orch-prepare.json"


@dataclass(frozen=True)
class Link:
    """One file DEST should hold: `target` (relative to DEST) made from `source`."""

    target: str
    source: Path
    mode: str  # symlink, hardlink, copy, or fixed (a corrected copy: project/fixes.py)
    # A fixed copy's recipe (background, caption): a different one remakes the copy.
    fix: str = ""


def read_manifest(dest: Path) -> dict[str, dict[str, Any]]:
    """The files an earlier `prepare` made in DEST: {target: record}."""
    path = dest / MANIFEST_NAME
    try:
        data = json.loads(read_regular_text(path))
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a table")
        return {str(k): dict(v) for k, v in files.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LayoutError(
            f"The prepare manifest {path} is damaged ({exc}).",
            "Delete it and the img/ and reg/ folders in DEST, then run prepare again.",
        ) from exc


def write_manifest(dest: Path, files: dict[str, dict[str, Any]]) -> None:
    text = json.dumps({"version": 1, "files": files}, ensure_ascii=False, indent=1, sort_keys=True)
    atomic_write_text(dest / MANIFEST_NAME, text + "\n")


def matches(link: Link, target: Path, record: dict[str, Any] | None) -> bool:
    """True when `target` already is what `link` asks for."""
    try:
        if link.mode == "symlink":
            return target.is_symlink() and os.readlink(target) == str(link.source)
        if target.is_symlink():
            return False
        if link.mode == "hardlink":
            return os.path.samefile(target, link.source)
        src, dst = link.source.stat(), target.stat()
        if link.mode == "fixed" or (record is not None and record.get("mode") == "fixed"):
            return (
                record is not None
                and record.get("mode") == link.mode
                and record.get("fix") == link.fix
                and record.get("size") == dst.st_size
                and record.get("mtime_ns") == dst.st_mtime_ns
                and record.get("source_size") == src.st_size
                and record.get("source_mtime_ns") == src.st_mtime_ns
            )
        if (src.st_ino, src.st_dev) == (dst.st_ino, dst.st_dev):
            return False  # a hard link is not a copy: editing it would edit the source
        if record is not None and record.get("mode") == "copy" and "size" in record:
            return (
                record.get("size") == dst.st_size
                and record.get("mtime_ns") == dst.st_mtime_ns
                and record.get("source_size") == src.st_size
                and record.get("source_mtime_ns") == src.st_mtime_ns
            )
        return src.st_size == dst.st_size and link.source.read_bytes() == target.read_bytes()
    except OSError:
        return False


def unchanged(target: Path, record: dict[str, Any]) -> bool:
    """True when a file prepare made is still as prepare left it (safe to remove/replace)."""
    try:
        if record.get("mode") == "symlink":
            return target.is_symlink() and os.readlink(target) == record.get("source")
        if target.is_symlink():
            return False
        st = target.stat()
        if record.get("mode") == "hardlink":
            if "ino" not in record:  # recorded by an older version before it was made
                return os.path.samefile(target, str(record.get("source")))
            return st.st_ino == record.get("ino") and st.st_dev == record.get("dev")
        if record.get("mode") == "fixed" and "size" not in record:
            return True  # recorded just before it was made: a kill came in between
        if "size" not in record:  # likewise: compare with its source, if that is still there
            source = Path(str(record.get("source")))
            return (
                st.st_size == source.stat().st_size and source.read_bytes() == target.read_bytes()
            )
        return st.st_size == record.get("size") and st.st_mtime_ns == record.get("mtime_ns")
    except OSError:
        return False


def expected_record(link: Link) -> dict[str, Any]:
    """The record of a file not made yet, as `record_of` will find it once made: written
    to the manifest before the file exists, so a kill in between leaves nothing that a
    later run cannot tell is prepare's. A hard link shares its source's inode, and a copy
    keeps its source's size and time (the apply step sets it)."""
    record: dict[str, Any] = {"source": str(link.source), "mode": link.mode}
    if link.mode == "fixed":
        return record | {"fix": link.fix}  # its size is known once it is made
    if link.mode == "symlink":
        return record
    src = link.source.stat()
    if link.mode == "hardlink":
        record.update(ino=src.st_ino, dev=src.st_dev)
    record.update(size=src.st_size, mtime_ns=src.st_mtime_ns)
    record.update(source_size=src.st_size, source_mtime_ns=src.st_mtime_ns)
    return record


def record_of(link: Link, target: Path) -> dict[str, Any]:
    """The manifest record of a file in DEST made from `link` (stats it and its source)."""
    record: dict[str, Any] = {"source": str(link.source), "mode": link.mode}
    if link.mode != "symlink":
        st, src = target.stat(), link.source.stat()
        if link.mode != "fixed":  # a fixed copy is known by its size, time and recipe
            record.update(ino=st.st_ino, dev=st.st_dev)
        record.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        record.update(source_size=src.st_size, source_mtime_ns=src.st_mtime_ns)
    if link.mode == "fixed":
        record["fix"] = link.fix
    return record
