"""`kohya-orch export`: copy or link a run's LoRA files into Forge's models/Lora folder.

Planned first (`plan_export`, reads only), then applied (`apply_export`): an identical file
already there is skipped, a different file of the same name is never replaced without
`force`, and every copy is written atomically (temp file in the target folder, then rename).
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.errors import ResultsError
from kohya_orchestrator.fsutil import fsync_dir, open_regular, temp_path_for
from kohya_orchestrator.locking import folder_lock

# Actions: what happens to one file.
COPY = "copy"
LINK = "link"
REPLACE = "replace"  # a different file of that name is there and --force was given
SKIP = "skip"  # the same file (or a link to it) is already there
CONFLICT = "conflict"  # a different file is there and --force was not given


@dataclass(frozen=True)
class ExportAction:
    source: Path
    target: Path
    action: str
    reason: str = ""


@dataclass(frozen=True)
class ExportPlan:
    to: Path
    link: bool
    actions: list[ExportAction]

    @property
    def conflicts(self) -> list[ExportAction]:
        return [a for a in self.actions if a.action == CONFLICT]


def same_content(a: Path, b: Path) -> bool:
    """True when `b` is `a`, links to it, or has the same bytes."""
    try:
        if os.path.samefile(a, b):
            return True
        return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def plan_export(
    sources: list[Path], to: Path, *, link: bool = False, force: bool = False
) -> ExportPlan:
    """Decide, for each LoRA file, whether it is copied, linked, skipped or in the way."""
    if not to.is_dir():
        raise ResultsError(
            f"Export folder not found: {to}",
            "Give Forge's LoRA folder, e.g. ~/stable-diffusion-webui-forge/models/Lora "
            "(it is not created for you, so a typo cannot make a stray folder).",
        )
    if not sources:
        raise ResultsError("No LoRA files to export.", "Train first, or check DEST/model/.")
    actions = []
    for src in sources:
        target = to / src.name
        fresh = LINK if link else COPY
        if not target.exists() and not target.is_symlink():
            actions.append(ExportAction(src, target, fresh))
        elif same_content(src, target):
            actions.append(ExportAction(src, target, SKIP, "already there, identical"))
        elif target.is_dir():
            actions.append(ExportAction(src, target, CONFLICT, "a folder of that name is there"))
        elif force:
            actions.append(ExportAction(src, target, REPLACE, "it was different"))
        else:
            actions.append(ExportAction(src, target, CONFLICT, "a different file is there"))
    return ExportPlan(to, link, actions)


def run_export(
    sources: list[Path], to: Path, *, link: bool = False, force: bool = False, dry_run: bool = False
) -> tuple[ExportPlan, list[ExportAction]]:
    """The `export` command: plan (the checks), then, unless `dry_run`, take the lock of the
    Forge folder, plan again and apply (what to skip and what is in the way is decided
    with nobody else writing there); returns the plan and the actions done."""
    plan = plan_export(sources, to, link=link, force=force)
    if dry_run:
        return plan, plan.actions
    with folder_lock(to, "export"):
        plan = plan_export(sources, to, link=link, force=force)
        return plan, apply_export(plan)


def apply_export(plan: ExportPlan) -> list[ExportAction]:
    """Carry out a plan without conflicts; returns the actions done (skips included)."""
    if plan.conflicts:
        names = ", ".join(a.target.name for a in plan.conflicts)
        raise ResultsError(
            f"Not exported: {len(plan.conflicts)} file(s) in {plan.to} have the same name "
            f"but different content: {names}. Nothing was copied.",
            "Use --force to replace them, or rename the old files first.",
        )
    done = []
    for action in plan.actions:
        if action.action == SKIP:
            done.append(action)
            continue
        if plan.link:
            _link_atomic(action.source, action.target)
        else:
            _copy_atomic(action.source, action.target)
        done.append(action)
    fsync_dir(plan.to)
    return done


def _copy_atomic(source: Path, target: Path) -> None:
    tmp = temp_path_for(target)
    try:
        with os.fdopen(open_regular(source), "rb") as src, tmp.open("xb") as dst:
            shutil.copyfileobj(src, dst, length=1024 * 1024)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(source, tmp)  # keeps the time written, which `results` shows
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _link_atomic(source: Path, target: Path) -> None:
    tmp = temp_path_for(target)
    os.symlink(source.resolve(), tmp)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
