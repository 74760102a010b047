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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kohya_orchestrator.errors import OrchError, PreflightError
from kohya_orchestrator.sdscripts.checkout import (
    PINNED_PACKAGES,
    locate_python,
    locate_sd_scripts,
    requirement_pins,
    sd_scripts_commit,
)
from kohya_orchestrator.sdscripts.concepts import NO_REPEATS, scan_concepts
from kohya_orchestrator.train.launch import STATE_SUFFIX
from kohya_orchestrator.train.probe import (
    Probe,
    accelerate_default_configs,
    run_probe,
)
from kohya_orchestrator.units import human_size

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    status: Status
    detail: str


@dataclass
class PreflightReport:
    """The checklist, and what it found out along the way (for the launch and the run record)."""

    checks: list[Check] = field(default_factory=list)
    sd_scripts: Path | None = None
    python: str | None = None
    probe: Probe | None = None
    commit: str | None = None

    def add(self, name: str, status: Status, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def problems(self) -> list[str]:
        return [c.detail for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[str]:
        return [c.detail for c in self.checks if c.status == "warn"]

    def require_ok(self) -> None:
        """Raise PreflightError listing every failed check."""
        problems = self.problems
        if problems:
            raise PreflightError(
                f"training cannot start: the preflight found {len(problems)} problem(s).",
                problems,
                hint="Fix these and run again; `kohya-orch doctor DEST` shows the whole checklist.",
            )


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
        report.add(
            "captions",
            "fail",
            f"{len(missing)} of {count} image(s) in {folder} have no {ext} caption: {shown}",
        )
    else:
        report.add("captions", "ok", f"every image has a {ext} caption")
    summary = ", ".join(f"{c.path.name} ({len(c.images)})" for c in concepts)
    report.add("dataset", "ok", f"{count} image(s) in {summary}")
    if skipped:
        report.add("dataset", "warn", f"sd-scripts will skip folder(s) {', '.join(skipped)}")


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


def _check_python(
    report: PreflightReport, probe: Probe, values: Mapping[str, Any], gpus: int
) -> None:
    for module in ("torch", "torchvision", "accelerate"):
        error = probe.errors.get(module)
        if error:
            report.add(module, "fail", f"{probe.python} cannot import {module}: {error}")
    if probe.torch:
        gpu_text = f": {', '.join(probe.gpus)}" if probe.gpus else ""
        vision = f", torchvision {probe.torchvision}" if probe.torchvision else ""
        report.add("torch", "ok", f"torch {probe.torch}{vision}, device {probe.device}{gpu_text}")
    if probe.accelerate:
        report.add("accelerate", "ok", f"accelerate {probe.accelerate}")
    if probe.missing:
        report.add(
            "requirements",
            "fail",
            f"{probe.python} lacks sd-scripts' module(s) {', '.join(probe.missing)}: install its "
            "requirements.txt there.",
        )
    precision = str(values.get("mixed_precision") or "no")
    if probe.device == "mps" and precision in ("fp16", "bf16"):
        report.add(
            "device", "warn", f"mixed_precision {precision} often fails on Apple Silicon; use no."
        )
    elif probe.device == "cpu":
        report.add("device", "warn", "no GPU found: training runs on the CPU, very slowly.")
    if gpus > 1 and probe.gpu_count < gpus:
        report.add(
            "device", "fail", f"--gpus {gpus} but {probe.python} sees {probe.gpu_count} GPU(s)."
        )


def _check_pins(report: PreflightReport, probe: Probe, folder: Path) -> None:
    """The trainer Python's packages against the versions the checkout's requirements pin."""
    pins = requirement_pins(folder)
    for name in PINNED_PACKAGES:
        have, want = probe.versions.get(name), pins.get(name)
        if have and want and have.split("+", 1)[0] != want:
            report.add(
                "requirements",
                "warn",
                f"{name} {have} in {probe.python}, but {folder / 'requirements.txt'} pins "
                f"{want}: sd-scripts is tested with the pinned version (pip install "
                f"{name}=={want})",
            )


def check_environment(
    script: str,
    *,
    values: Mapping[str, Any] | None = None,
    sd_scripts: Path | None = None,
    python: str | None = None,
    gpus: int = 1,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    probe: Callable[[str], Probe] | None = run_probe,
) -> PreflightReport:
    """sd-scripts, the Python that runs it (probed unless `probe` is None), accelerate's config."""
    env = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    report = PreflightReport()
    folder, source = locate_sd_scripts(script, sd_scripts, env, home)
    if folder is None:
        report.add(
            "sd-scripts",
            "fail",
            f"sd-scripts not found (tried {source}); "
            "give --sd-scripts DIR or set KOHYA_SD_SCRIPTS.",
        )
    elif not folder.is_dir():
        report.add(
            "sd-scripts",
            "fail",
            f"sd-scripts not found: {folder} (from {source}) does not exist.",
        )
    elif not (folder / script).is_file():
        report.add("sd-scripts", "fail", f"{folder} (from {source}) has no {script}.")
    else:
        report.sd_scripts = folder
        report.commit = sd_scripts_commit(folder)
        commit = f" at {report.commit[:10]}" if report.commit else ""
        report.add("sd-scripts", "ok", f"{folder}{commit} (from {source})")
    report.python, py_source = locate_python(python, report.sd_scripts)
    if probe is not None:
        try:
            report.probe = probe(report.python)
        except PreflightError as exc:
            report.add("python", "fail", f"{exc.message} {' '.join(exc.problems)}".strip())
        else:
            report.add("python", "ok", f"{report.python} ({py_source})")
            _check_python(report, report.probe, values or {}, gpus)
            if report.sd_scripts is not None:
                _check_pins(report, report.probe, report.sd_scripts)
    for path in accelerate_default_configs(env, home):
        report.add(
            "accelerate config",
            "warn",
            f"{path} exists: kohya-orch passes accelerate a config of its own, so this file "
            "is not used for the run; to use it on purpose, pass --accelerate-config.",
        )
    return report


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
