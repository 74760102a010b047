"""The trainer's environment: sd-scripts (found, holding the script), the Python that runs it
(torch, accelerate, sd-scripts' requirements and their pins, the device), and accelerate's own
default config. `doctor` runs these alone; the preflight runs them before the run's own checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kohya_orchestrator.errors import PreflightError
from kohya_orchestrator.sdscripts.checkout import (
    PINNED_PACKAGES,
    locate_python,
    locate_sd_scripts,
    requirement_pins,
    sd_scripts_commit,
)
from kohya_orchestrator.train.probe import Probe, accelerate_default_configs, run_probe

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
