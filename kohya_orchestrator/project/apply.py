"""`prepare`'s apply step: make the folders, the settings file, the links and the manifest.

The plan (prepare.plan_prepare) decided what to add, replace and remove; this does it in an
order where a kill or a full disk at any point leaves DEST re-syncable by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kohya_orchestrator.errors import FileSystemError, PlanConflictError
from kohya_orchestrator.fsutil import fsync_dir, temp_path_for
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.locking import folder_lock
from kohya_orchestrator.project.fixes import start_fixes
from kohya_orchestrator.project.manifest import (
    MANIFEST_NAME,
    Link,
    expected_record,
    record_of,
    unchanged,
    write_manifest,
)
from kohya_orchestrator.project.prepare import (
    PreparePlan,
    PrepareRequest,
    cross_device_error,
    plan_prepare,
)

if TYPE_CHECKING:
    from kohya_orchestrator.config.settings_file import InitialSettings


@dataclass
class _Step:
    """How far `apply_prepare` got: what it was doing, and how many files it made."""

    doing: str = ""
    made: int = 0


def run_prepare(
    request: PrepareRequest, *, dry_run: bool = False
) -> tuple[PreparePlan, InitialSettings | None]:
    """The `prepare` command: plan, then (unless `dry_run`) apply, with DEST's lock held.

    The plan that is applied is always made under the lock, so a `prepare` that ran
    meanwhile is never half-overwritten. A DEST that does not exist yet is only created
    once a first plan has checked everything (bad input leaves nothing behind)."""
    dest = Path(os.path.abspath(request.dest))
    if dry_run:
        return plan_prepare(request), None
    made = not os.path.isdir(dest)
    if made:
        plan_prepare(request)  # every check, before DEST exists
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FileSystemError(
                f"Cannot create DEST {dest}: {exc.strerror or exc}; nothing was changed.",
                "Check the path and the permissions of the folder it goes in, then run the "
                "command again.",
            ) from exc
    try:
        with folder_lock(dest, "prepare"):
            plan = plan_prepare(request)
            return plan, apply_prepare(plan)
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                dest.rmdir()  # only when nothing was made in it
        raise


def apply_prepare(plan: PreparePlan) -> InitialSettings:
    """Create the folders, write the settings file (only if there is none yet), sync the
    links and the manifest; return what happened to the settings file.

    An OSError (disk full, no permission) becomes a FileSystemError saying where it
    stopped; the sources are only read, and the next run picks up where this one stopped.
    """
    step = _Step()
    try:
        return _apply(plan, step)
    except OSError as exc:
        total = len(plan.add) + len(plan.replace)
        where = step.doing
        if where.endswith("/") and exc.filename is not None:
            where = os.fsdecode(exc.filename)  # the folder mkdir could not make (DEST itself?)
        if exc.errno == errno.EXDEV:
            raise cross_device_error(plan.request.images, plan.dest) from exc
        raise FileSystemError(
            f"prepare stopped in {plan.dest} at {where}: {exc.strerror or exc}. "
            f"{step.made} of {total} files were made; the source folders were not changed.",
            "Free some space or fix the permissions in DEST, then run the same command "
            "again; it picks up where this one stopped.",
        ) from exc


def left_untouched_error(plan: PreparePlan) -> PlanConflictError:
    """The error to end with when apply left files alone (`plan.skipped`): the rest of
    DEST was synced, but the project is not complete."""
    return PlanConflictError(
        f"{len(plan.skipped)} file(s) in {plan.dest} appeared or changed while prepare "
        "ran; they were left untouched.",
        plan.skipped,
        "Move them out of DEST (they are not prepare's), then run the same command again.",
    )


def _apply(plan: PreparePlan, step: _Step) -> InitialSettings:
    from kohya_orchestrator.config.settings_file import write_initial_settings

    request, dest = plan.request, plan.dest
    for rel in plan.dirs:
        step.doing = f"{rel}/"
        (dest / rel).mkdir(parents=True, exist_ok=True)
    # Settings first: they were validated in the plan, and a project with settings but
    # half its links is re-synced by the next run anyway.
    layout = plan.layout or Layout(dest)
    step.doing = layout.settings_file.name
    settings = write_initial_settings(
        layout,
        name=request.name,
        trigger=request.trigger or request.name,
        images=Path(os.path.realpath(request.images)),
        model=Path(os.path.abspath(request.model)),
        repeats=request.repeats,
        reg=Path(os.path.realpath(request.reg)) if request.reg is not None else None,
        reg_repeats=request.reg_repeats if request.reg is not None else None,
        class_prompt=request.class_prompt,
        concepts=[s.concept for s in plan.sources if not s.is_reg][1:],
        reg_concepts=[s.concept for s in plan.sources if s.is_reg][1:],
        imported=request.imported,
        overrides=request.overrides,
    )
    manifest = dict(plan.manifest) | plan.refresh
    for link in plan.add:  # recorded before they exist: a kill leaves nothing unowned
        manifest[link.target] = expected_record(link)
    step.doing = MANIFEST_NAME
    write_manifest(dest, manifest)
    touched = set()
    for target in plan.remove:
        step.doing = target
        (dest / target).unlink()
        manifest.pop(target, None)
        touched.add((dest / target).parent)
    replacing = {link.target for link in plan.replace}
    # The corrected copies are made in threads meanwhile, and written last.
    todo = plan.replace + plan.add
    copies = start_fixes(plan.fixes, todo, plan.request.background)
    todo = [link for link in todo if link.target not in copies] + [
        link for link in todo if link.target in copies
    ]
    for link in todo:
        step.doing = link.target
        old = plan.manifest.get(link.target) if link.target in replacing else None
        data = copies[link.target].result() if link.target in copies else None
        record = _make(link, dest / link.target, old, data)
        if record is None:
            plan.skipped.append(link.target)
            if old is None:
                manifest.pop(link.target, None)  # the file there is the user's, not ours
            continue
        manifest[link.target] = record
        step.made += 1
        touched.add((dest / link.target).parent)
    if plan.skipped:
        gone = set(plan.skipped)
        plan.add = [link for link in plan.add if link.target not in gone]
        plan.replace = [link for link in plan.replace if link.target not in gone]
    for folder in touched:
        fsync_dir(folder)
    _remove_empty_dirs(dest, {str(Path(t).parent) for t in plan.remove}, set(plan.dirs))
    step.doing = MANIFEST_NAME
    write_manifest(dest, manifest)
    return settings


def _make(
    link: Link, target: Path, old: dict[str, Any] | None, data: bytes | None = None
) -> dict[str, Any] | None:
    """Create one file in DEST, or atomically replace the one prepare made (`old` is its
    record); return its manifest record, or None when a file the plan did not expect is
    there now (it is left untouched).

    A new file is created without replacing: a file that appeared in DEST since the plan
    makes the create fail instead of being overwritten.
    """
    if old is None and link.mode == "symlink":
        return _create(lambda: os.symlink(link.source, target), link, target)
    if old is None and link.mode == "hardlink":
        return _create(lambda: os.link(link.source, target), link, target)
    tmp = temp_path_for(target)
    try:
        if link.mode == "symlink":
            os.symlink(link.source, tmp)
        elif link.mode == "hardlink":
            os.link(link.source, tmp)
        elif data is not None:  # a corrected copy (project/fixes.py)
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                # The source's time, as a copy keeps it: the same run gives the same record.
                source = os.stat(link.source)
                os.utime(fh.fileno(), ns=(source.st_atime_ns, source.st_mtime_ns))
                os.fsync(fh.fileno())
        else:
            source = os.stat(link.source)
            shutil.copyfile(link.source, tmp)
            # The copy keeps the source's time, so the record written before it was made
            # (expected_record) already describes it if a kill comes before the next one.
            os.utime(tmp, ns=(source.st_atime_ns, source.st_mtime_ns))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        if old is None:
            return _create(lambda: _link_copy(tmp, target), link, target)
        if not unchanged(target, old):
            return None  # changed by the user since the plan
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return record_of(link, target)


def _create(make: Callable[[], None], link: Link, target: Path) -> dict[str, Any] | None:
    try:
        make()
    except FileExistsError:
        return None
    return record_of(link, target)


def _link_copy(tmp: Path, target: Path) -> None:
    """Give the finished copy `tmp` its name without replacing a file that is there."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        # File systems without hard links (FAT, some network shares): check, then rename.
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from exc
        os.replace(tmp, target)


def _remove_empty_dirs(dest: Path, candidates: set[str], keep: set[str]) -> None:
    """Remove concept folders emptied by the sync (and reg/ when it is left empty)."""
    for rel in sorted(candidates, key=len, reverse=True):
        for folder in (dest / rel, (dest / rel).parent):
            rel_name = folder.relative_to(dest).as_posix()
            if rel_name in keep or rel_name in ("img", ".", "model", "log"):
                continue
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
