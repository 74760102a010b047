"""Before hours of training: will this run start and finish? Every problem, collected at once.

Checks sd-scripts (found, holding the script), the Python that runs it (torch, accelerate,
sd-scripts' requirements, the device), the base model's family, the dataset (concept folders,
captions), the output folder (no finished run overwritten), free disk, and warns about an
accelerate default_config.yaml.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import OrchError
from kohya_orchestrator.lint.files import RESYNC_HINT, gone_links_text
from kohya_orchestrator.sdscripts.concepts import NO_REPEATS, caption_path, scan_concepts
from kohya_orchestrator.train.environment import PreflightReport, check_environment
from kohya_orchestrator.train.launch import STATE_SUFFIX
from kohya_orchestrator.train.probe import Probe, run_probe
from kohya_orchestrator.units import human_size

__all__ = ["PreflightReport", "check_environment", "disk_needed", "run_preflight"]


def _source_caption(image: Path, ext: str, train_dir: Path) -> Path | None:
    """The caption file beside the image's source (a link's target, else the file prepare
    copied it from, by DEST's manifest), when there is one."""
    if image.is_symlink():
        source = Path(os.path.realpath(image))
    else:
        from kohya_orchestrator.project.manifest import read_manifest

        try:
            records = read_manifest(train_dir.parent)
        except OrchError:
            return None
        rel = image.relative_to(train_dir.parent).as_posix()
        raw = records.get(rel, {}).get("source")
        if not raw:
            return None
        source = Path(str(raw))
    caption = caption_path(source, ext)
    return caption if caption.is_file() else None


def _check_dataset(report: PreflightReport, values: Mapping[str, Any]) -> None:
    raw = values.get("train_data_dir")
    if not raw:
        report.add("dataset", "fail", "train_data_dir is not set in the config.")
        return
    folder = Path(str(raw))
    if not folder.is_dir():
        report.add("dataset", "fail", f"train_data_dir {folder} does not exist.")
        return
    ext = str(values.get("caption_extension") or ".caption")
    scanned = scan_concepts(folder)
    concepts = [c for c in scanned if not c.skipped]
    skipped = [c.path.name for c in scanned if c.skipped == NO_REPEATS]
    count = sum(len(c.images) for c in concepts)
    broken = [p for c in concepts for p in c.broken]
    if broken:
        report.add("dataset", "fail", f"{gone_links_text(folder, broken)}; {RESYNC_HINT}.")
        return
    if count == 0:
        names = f" (skipped: {', '.join(skipped)})" if skipped else ""
        report.add(
            "dataset",
            "fail",
            f"no images in {folder}: sd-scripts reads only folders named <repeats>_<name> "
            f"with images inside{names}.",
        )
        return
    missing = [p for c in concepts for p in c.uncaptioned(ext)]
    if missing:
        shown = ", ".join(p.name for p in missing[:3]) + (" ..." if len(missing) > 3 else "")
        in_source = sum(1 for p in missing if _source_caption(p, ext, folder) is not None)
        later = (
            f"; {in_source} of them have one in the source folder now, which prepare has not "
            f"linked yet: {RESYNC_HINT}"
            if in_source
            else ""
        )
        report.add(
            "captions",
            "fail",
            f"{len(missing)} of {count} image(s) in {folder} have no {ext} caption: {shown}"
            + later,
        )
    else:
        report.add("captions", "ok", f"every image has a {ext} caption")
    summary = ", ".join(f"{c.path.name} ({len(c.images)})" for c in concepts)
    report.add("dataset", "ok", f"{count} image(s) in {summary}")
    if skipped:
        report.add("dataset", "warn", f"sd-scripts will skip folder(s) {', '.join(skipped)}")
    from kohya_orchestrator.dataset.imagecheck import misread_warnings

    misread = misread_warnings(
        (p for c in concepts for p in c.images),
        hint=f"prepare makes corrected copies: {RESYNC_HINT}",
    )
    if misread:
        report.add("images", "warn", "\n      ".join(misread))


def _check_model(report: PreflightReport, values: Mapping[str, Any], script: str) -> str | None:
    raw = values.get("pretrained_model_name_or_path")
    if not raw:
        report.add("model", "fail", "pretrained_model_name_or_path is not set in the config.")
        return None
    from kohya_orchestrator.sdscripts.checkpoint import require_trainable

    try:
        info = require_trainable(Path(str(raw)))
    except OrchError as exc:
        report.add("model", "fail", exc.message)
        return None
    truncated = _truncated(Path(str(raw)))
    if truncated:
        report.add("model", "fail", truncated)
        return info.family
    wanted = info.script
    if wanted is not None and wanted != script:
        report.add(
            "model",
            "fail",
            f"{raw} is {info.label}, which {wanted} trains, but the config is for {script}.",
        )
        return info.family
    report.add("model", "ok", f"{Path(str(raw)).name}: {info.label}{_stand_in(Path(str(raw)))}")
    return info.family


def _stand_in(path: Path) -> str:
    """`(a stand-in: ...)` for a checkpoint kohya-orch's demo or tests made, else ""."""
    from kohya_orchestrator.sdscripts.safetensors_header import read_header

    note = read_header(path).metadata.get("kohya_orch_note")
    return f" ({note})" if note else ""


def _truncated(path: Path) -> str | None:
    """A message when the file is shorter than its header says (an interrupted download)."""
    from kohya_orchestrator.sdscripts.safetensors_header import read_header

    header = read_header(path)
    end = max((t.data_offsets[1] for t in header.tensors.values()), default=0)
    needed = 8 + header.header_size + end
    if header.file_size >= needed:
        return None
    return (
        f"{path} is truncated: its header describes {needed} bytes, the file has "
        f"{header.file_size} (an interrupted download? download it again)."
    )


def _check_output(
    report: PreflightReport, values: Mapping[str, Any], *, force: bool, resume: bool
) -> None:
    out = Path(str(values.get("output_dir") or "."))
    name = str(values.get("output_name") or "last")
    final = out / f"{name}.safetensors"
    numbered = sorted(out.glob(f"{glob_escape(name)}-[0-9][0-9][0-9][0-9][0-9][0-9].safetensors"))
    if resume:
        states = [p for p in out.glob(f"*{STATE_SUFFIX}") if p.is_dir()] if out.is_dir() else []
        if not states:
            report.add(
                "output",
                "fail",
                f"--resume: no saved state (a '*{STATE_SUFFIX}' folder) in {out}; "
                "turn on save_state for the next run.",
            )
        else:
            report.add("output", "ok", f"resuming in {out}")
        return
    existing = [final] if final.is_file() else []
    existing += numbered
    if not existing:
        report.add("output", "ok", f"{out} holds no LoRA named {name}")
    elif force:
        report.add(
            "output",
            "warn",
            f"--force: {len(existing)} file(s) of {name} in {out} will be overwritten",
        )
    else:
        what = "a finished run" if final.is_file() else "an unfinished run"
        report.add(
            "output",
            "fail",
            f"{existing[0]} exists ({what} of {name}): training would overwrite it; use "
            "--resume to continue, --force to overwrite, or change output_name.",
        )


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_disk(
    report: PreflightReport,
    values: Mapping[str, Any],
    script: str,
    free_bytes: Callable[[Path], int],
) -> None:
    out = Path(str(values.get("output_dir") or "."))
    need = disk_needed(values, script)
    free = free_bytes(_existing_parent(out.resolve()))
    text = f"{human_size(free)} free for about {human_size(need)} of LoRA files, states and latents"
    report.add("disk", "ok" if free >= need else "fail", text if free >= need else f"only {text}")


def disk_needed(values: Mapping[str, Any], script: str) -> int:
    """The disk the run needs: `plan`'s own figure, or without the cached latents when the
    dataset cannot be counted (the dataset check says why)."""
    from kohya_orchestrator.sdscripts.epochs import planned_lora_stems
    from kohya_orchestrator.sdscripts.lora_size import estimate_disk
    from kohya_orchestrator.train.steps import count_steps, family_of

    try:
        return count_steps(values, script=script).disk_bytes
    except OrchError:
        pass
    epochs = values.get("max_train_epochs")
    every = values.get("save_every_n_epochs")
    files = len(
        planned_lora_stems(
            "x",
            epochs if isinstance(epochs, int) and epochs > 0 else 1,
            every if isinstance(every, int) and every > 0 else None,
        )
    )
    return estimate_disk(values, family_of(values, script), files).total


def run_preflight(
    values: Mapping[str, Any],
    script: str,
    *,
    sd_scripts: Path | None = None,
    python: str | None = None,
    force: bool = False,
    resume: bool = False,
    gpus: int = 1,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    probe: Callable[[str], Probe] | None = run_probe,
    free_bytes: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free,
) -> PreflightReport:
    """Every check, none stopping the others. `probe=None` skips starting the trainer's Python."""
    report = check_environment(
        script,
        values=values,
        sd_scripts=sd_scripts,
        python=python,
        gpus=gpus,
        environ=environ,
        home=home,
        probe=probe,
    )
    _check_model(report, values, script)
    _check_dataset(report, values)
    _check_output(report, values, force=force, resume=resume)
    _check_disk(report, values, script, free_bytes)
    return report
