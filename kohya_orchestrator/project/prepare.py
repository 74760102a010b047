"""`prepare`: the kohya folder layout in DEST, filled with links to the images and captions.

DEST/img/<repeats>_<name>/ gets a symlink (or hardlink, or copy) of every image of the
source folder and of its `.txt` / `.caption` caption; DEST/reg/<n>_<class>/ the same for
regularisation images, only when they are given. Image and caption suffixes are
lower-cased in DEST, because sd-scripts matches `.png` / `.PNG` and `.txt` exactly.

Re-running syncs: what DEST should hold is computed from the sources, compared with what
is there and with the manifest (DEST/.kohya-orch-prepare.json, the files prepare made),
and only the difference is applied. A file in DEST that prepare did not make, or that the
user changed since, is never removed or replaced. Nothing outside DEST is written; the
source folders are only read. A kill midway is harmless: a link that already exists and
points where it should is adopted on the next run, copies are written atomically, and
the manifest is written (with the planned files) before the first change. The plan is
here; the apply step is in prepare_apply.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kohya_orchestrator.config.concepts import Concept
from kohya_orchestrator.dataset.imagecheck import needs_conversion
from kohya_orchestrator.dataset.names import fold_name, validate_file_prefix
from kohya_orchestrator.dataset.rename import require_no_pending_rename
from kohya_orchestrator.dataset.scan import ImageEntry, escaped, undecodable
from kohya_orchestrator.errors import InputError, LayoutError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.project.fixes import ImageFix, fixes_for
from kohya_orchestrator.project.manifest import (
    MANIFEST_NAME,
    Link,
    matches,
    read_manifest,
    record_of,
    unchanged,
)
from kohya_orchestrator.project.prepare_concepts import check_folders, is_inside

if TYPE_CHECKING:
    from kohya_orchestrator.project.prepare_concepts import SourceFolder

__all__ = [
    "MANIFEST_NAME",
    "Link",
    "PreparePlan",
    "PrepareRequest",
    "check_folders",
    "plan_prepare",
]
MODES = ("symlink", "hardlink", "copy")
CAPTION_SUFFIXES = (".txt", ".caption")


@dataclass(frozen=True)
class PrepareRequest:
    """What the user asked `prepare` for (paths as given)."""

    name: str
    images: Path
    dest: Path
    model: Path
    repeats: int = 7
    trigger: str = ""
    reg: Path | None = None
    reg_repeats: int = 1
    class_prompt: str | None = None
    mode: str = "symlink"
    overrides: tuple[str, ...] = ()
    # More concepts (the first is images/repeats, reg/reg_repeats), and settings imported
    # with --from (under the command line's own values).
    concepts: tuple[Concept, ...] = ()
    reg_concepts: tuple[Concept, ...] = ()
    imported: Mapping[str, Any] | None = None
    # Corrected copies for images sd-scripts would misread (project/fixes.py), flattened
    # on this background; False links every image as it is (and warns).
    fix_images: bool = True
    background: str = "white"


@dataclass
class PreparePlan:
    """The difference between DEST and what it should hold; computing it changes nothing."""

    request: PrepareRequest
    dest: Path
    dirs: list[str]
    add: list[Link]
    replace: list[Link]
    remove: list[str]
    kept: int
    desired: list[Link]
    manifest: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_label: str = ""
    images: int = 0
    reg_images: int = 0
    layout: Layout | None = None
    sources: list[SourceFolder] = field(default_factory=list)
    # Files the apply step left alone: they appeared in DEST, or were changed there,
    # between the plan and the apply.
    skipped: list[str] = field(default_factory=list)
    # The images that get a corrected copy instead of a link, by source path.
    fixes: dict[Path, ImageFix] = field(default_factory=dict)

    @property
    def changes(self) -> int:
        return len(self.add) + len(self.replace) + len(self.remove)


def _links(
    folder: Path, subdir: str, entries: list[ImageEntry], mode: str, fixes: dict[Path, ImageFix]
) -> list[Link]:
    links = []
    for e in entries:
        fix = fixes.get(e.image)
        if fix is not None:
            links.append(Link(f"{subdir}/{e.stem}{fix.suffix}", e.image, "fixed", fix.signature))
        elif not needs_conversion(e.image):
            links.append(
                Link(f"{subdir}/{e.stem}{e.image.suffix.lower()}", folder / e.image.name, mode)
            )
        for side in e.sidecars:
            suffix = side.name[len(e.stem) :].lower()
            if suffix in CAPTION_SUFFIXES:
                links.append(Link(f"{subdir}/{e.stem}{suffix}", folder / side.name, mode))
    return links


def caption_warnings(entries: list[ImageEntry], trigger: str, subdir: str) -> list[str]:
    """Images without a .txt caption, captions not starting with the trigger, shared stems."""
    from kohya_orchestrator.dataset.captions import parse_trigger, split_tags, starts_with_trigger
    from kohya_orchestrator.errors import CaptionError, InputError

    try:
        trig = parse_trigger(trigger) if trigger else None
    except InputError:
        trig = None  # settings validation reports a bad trigger
    missing, untriggered = [], []
    stems: dict[str, list[str]] = {}
    for e in entries:
        stems.setdefault(fold_name(e.stem), []).append(e.image.name)
        txt = [s for s in e.sidecars if s.name[len(e.stem) :].lower() == ".txt"]
        if not txt:
            missing.append(e.image.name)
            continue
        if trig is None:
            continue
        # The rule `caption` and `captions` use: the first tags are the trigger's tokens.
        try:
            ok = starts_with_trigger(split_tags(txt[0].read_text(encoding="utf-8")), trig)
        except (OSError, UnicodeDecodeError, CaptionError):
            ok = False
        if not ok:
            untriggered.append(txt[0].name)
    out = []
    if missing:
        out.append(f"{len(missing)} images have no .txt caption: {_few(missing)}")
    if untriggered:
        out.append(
            f"{len(untriggered)} captions do not start with the trigger {trigger!r}: "
            f"{_few(untriggered)}"
        )
    # Folded as macOS and Windows compare names: `A.png`, `a.jpg` share `A.txt` there.
    for names in stems.values():
        if len(names) > 1:
            stem = Path(names[0]).stem
            out.append(
                f"{' and '.join(names)} share the stem {stem!r}: sd-scripts gives them the "
                f"same caption ({subdir}/{stem}.txt)"
            )
    return out


def _few(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def plan_prepare(request: PrepareRequest) -> PreparePlan:
    """Check everything and compute the sync; reads the sources and DEST, writes nothing."""
    from kohya_orchestrator.config.settings import resolve_settings
    from kohya_orchestrator.project.prepare_concepts import source_folders
    from kohya_orchestrator.sdscripts.checkpoint import require_trainable

    validate_file_prefix(request.name, what="name")
    if request.mode not in MODES:
        raise LayoutError(f"Unknown link mode {request.mode!r}.", f"Use one of {', '.join(MODES)}.")
    if request.reg is not None:
        validate_file_prefix(request.class_prompt or "", what="class prompt")
    model = require_trainable(request.model)
    dest = Path(os.path.abspath(request.dest))
    train = [Concept(str(request.images), request.repeats), *request.concepts]
    reg = [Concept(str(request.reg), request.reg_repeats)] if request.reg is not None else []
    sources = source_folders(
        train, [*reg, *request.reg_concepts], dest, request.name, request.class_prompt
    )
    _check_paths(request, sources, dest)
    resolve_settings(settings_values(request, sources), request.overrides, source="prepare")
    for source in sources:
        require_no_pending_rename(source.path, "prepare")

    layout = Layout(dest)
    desired: list[Link] = []
    warnings: list[str] = []
    several = len([s for s in sources if not s.is_reg]) > 1
    fixes = fixes_for(
        [e for s in sources for e in s.entries],
        request.fix_images,
        request.background,
        CAPTION_SUFFIXES,
        warnings,
    )
    for source in sources:
        desired += _links(source.path, source.subdir, source.entries, request.mode, fixes)
        if not source.is_reg:
            found = caption_warnings(source.entries, request.trigger or request.name, source.subdir)
            warnings += [f"{source.subdir}: {w}" if several else w for w in found]
    dirs = [sources[0].subdir, "model", "log", *(s.subdir for s in sources[1:])]
    _check_dest_dirs(dest, dirs)
    desired = _one_source_per_target(desired, dest)
    _check_names(desired, dest)

    manifest = read_manifest(dest)
    plan = PreparePlan(request, dest, dirs, [], [], [], 0, desired, manifest, warnings)
    plan.layout = layout
    plan.sources = sources
    plan.fixes = fixes
    plan.model_label = model.label
    plan.images = sum(len(s.entries) for s in sources if not s.is_reg)
    plan.reg_images = sum(len(s.entries) for s in sources if s.is_reg)
    problems = _diff(plan)
    if problems:
        from kohya_orchestrator.errors import PlanConflictError

        raise PlanConflictError(
            f"Cannot prepare {dest}: {len(problems)} file(s) in the way, nothing was changed.",
            problems,
            "These files were not made by prepare (or were changed since); move them away.",
        )
    return plan


def _one_source_per_target(desired: list[Link], dest: Path) -> list[Link]:
    """Drop a file listed twice (`a.png` and `a.jpg` share `a.txt`); refuse one target
    made from two sources (`a.png` and `a.PNG`), which would flip-flop on every run.

    Targets are compared folded, as macOS and Windows compare names."""
    out: list[Link] = []
    first: dict[str, Link] = {}
    problems = []
    folder = None
    for link in desired:
        seen = first.setdefault(fold_name(link.target), link)
        if seen is link:
            out.append(link)
        elif seen.source != link.source:
            problems.append(
                f"{seen.target} would be made from both {seen.source.name} and {link.source.name}"
            )
            folder = folder or link.source.parent
    if problems:
        from kohya_orchestrator.errors import PlanConflictError

        raise PlanConflictError(
            f"Cannot prepare {dest}: {len(problems)} file(s) would come from two sources, "
            "nothing was changed.",
            problems,
            f"Give the images distinct names, e.g. `kohya-orch rename PREFIX {folder}`.",
        )
    return out


def _diff(plan: PreparePlan) -> list[str]:
    problems = []
    wanted = {link.target for link in plan.desired}
    for link in plan.desired:
        path = plan.dest / link.target
        record = plan.manifest.get(link.target)
        if not os.path.lexists(path):
            plan.add.append(link)
        elif matches(link, path, record):
            plan.kept += 1
            # A file made by a run stopped before its last manifest write has a record
            # without all its stat fields, and one that is already right but has no record
            # (DEST copied with `cp -a`) is adopted: record both, or a later run could not
            # tell them unchanged (and links to removed sources would dangle for ever).
            fresh = record_of(link, path)
            if fresh != record:
                plan.refresh[link.target] = fresh
        elif record is not None and unchanged(path, record):
            plan.replace.append(link)
        else:
            problems.append(f"{link.target} exists and was not made by prepare from {link.source}")
    for target, record in sorted(plan.manifest.items()):
        if target in wanted:
            continue
        old = plan.dest / target
        if not os.path.lexists(old):
            continue
        if unchanged(old, record):
            plan.remove.append(target)
        else:
            plan.warnings.append(f"{target} was changed in DEST since prepare made it; kept")
    return problems


def settings_values(request: PrepareRequest, sources: list[SourceFolder]) -> dict[str, Any]:
    """The settings prepare writes (and checks first): the imported file's under the
    command line's values."""
    train = [s for s in sources if not s.is_reg]
    reg = [s for s in sources if s.is_reg]
    values: dict[str, Any] = dict(request.imported or {})
    values |= {
        "name": request.name,
        "trigger": request.trigger or request.name,
        "images": str(train[0].path),
        "model": str(Path(os.path.abspath(request.model))),
        "repeats": request.repeats,
    }
    if len(train) > 1:
        values["concepts"] = [s.concept for s in train[1:]]
    if reg:
        values.update(reg=str(reg[0].path), reg_repeats=reg[0].repeats)
    if len(reg) > 1:
        values["reg_concepts"] = [s.concept for s in reg[1:]]
    if request.class_prompt is not None:
        values["class_prompt"] = request.class_prompt
    return values


def _check_dest_dirs(dest: Path, dirs: Sequence[str]) -> None:
    """Refuse a DEST whose img/, reg/... folders are links leading outside DEST."""
    real_dest = dest.resolve()
    for rel in ("img", "reg", *dirs):
        path = dest / rel
        if os.path.lexists(path) and not is_inside(path.resolve(), real_dest / rel):
            raise LayoutError(
                f"{path} leads outside DEST (to {path.resolve()}).",
                "prepare writes only inside DEST; replace that link with a folder.",
            )


def cross_device_error(images: Path, dest: Path) -> LayoutError:
    """--hardlink between two file systems (EXDEV): no space to free, another mode to pick."""
    return LayoutError(
        f"--hardlink cannot work here: {images} and {dest} are on different file systems, "
        "and a hard link cannot cross from one to another; nothing was linked.",
        "Use --symlink (the default) or --copy instead.",
    )


def _check_paths(request: PrepareRequest, sources: list[SourceFolder], dest: Path) -> None:
    """Paths that cannot go into the settings file, and hard links across file systems."""
    named = [("--dest", dest), ("--model", request.model)]
    named += [("--reg" if s.is_reg else "--images", s.path) for s in sources]
    for what, path in named:
        if undecodable(str(path)):
            raise InputError(
                f"{what} {escaped(str(path))}: the path is not valid UTF-8 (shown with \\x "
                "escapes); it cannot be written into the settings file.",
                "Rename that folder or file by hand, then run prepare again.",
            )
    if request.mode != "hardlink":
        return
    there = dest
    while not there.exists() and there != there.parent:
        there = there.parent
    for source in sources:
        if source.path.stat().st_dev != there.stat().st_dev:
            raise cross_device_error(source.path, dest)


def _check_names(desired: list[Link], dest: Path) -> None:
    """File names that are not UTF-8 cannot go into the manifest: refuse before anything."""
    bad = [link.source for link in desired if undecodable(link.source.name)]
    if bad:
        from kohya_orchestrator.errors import PlanConflictError

        raise PlanConflictError(
            f"Cannot prepare {dest}: {len(bad)} file name(s) are not valid UTF-8 (shown with "
            "\\x escapes), nothing was changed.",
            [f"{escaped(str(p))}" for p in bad],
            "Rename those files by hand (e.g. with only letters, digits and _), then run "
            "prepare again.",
        )
