"""`kohya-orch doctor`: the preflight checklist on its own, for the machine or a project."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.errors import OrchError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.sdscripts.facts import FactsChoice, choose_facts
from kohya_orchestrator.sdscripts.trainers import default_script
from kohya_orchestrator.train.environment import PreflightReport, check_environment
from kohya_orchestrator.train.platform_info import PlatformInfo, detect_platform
from kohya_orchestrator.train.preflight import run_preflight
from kohya_orchestrator.train.probe import Probe


@dataclass(frozen=True)
class Checkup:
    """The platform and the checklist: every check, failed or not."""

    platform: PlatformInfo
    report: PreflightReport


def check_setup(
    dest: Path | None,
    *,
    sd_scripts: Path | None,
    python: str | None,
    overrides: Sequence[str] = (),
    probe: Callable[[str], Probe],
) -> Checkup:
    """Without DEST: sd-scripts, its Python, the device. With DEST: the project's config,
    model, dataset, output folder and disk too. A config that cannot be rendered is one
    failed check, the machine is still checked."""
    from kohya_orchestrator.project.render import build_config

    plat = detect_platform()
    if dest is None:
        report = check_environment(
            default_script(), sd_scripts=sd_scripts, python=python, probe=probe
        )
        _add_facts(report, choose_facts(default_script(), sd_scripts=sd_scripts, python=python))
        return Checkup(plat, report)
    try:
        rendered = build_config(Layout.at(dest), overrides, sd_scripts=sd_scripts, python=python)
    except OrchError as exc:
        report = check_environment(
            default_script(), sd_scripts=sd_scripts, python=python, probe=probe
        )
        report.add("config", "fail", exc.render())
        return Checkup(plat, report)
    report = run_preflight(
        rendered.flat, rendered.script, sd_scripts=sd_scripts, python=python, probe=probe
    )
    if rendered.facts is not None:
        _add_facts(report, rendered.facts)
    for problem in rendered.report.errors:
        report.add("config", "fail", problem.render())
    return Checkup(plat, report)


def _add_facts(report: PreflightReport, facts: FactsChoice) -> None:
    """The facts line as a check: ok, or a warning when the pinned facts stood in."""
    report.add("facts", "ok", facts.line())
    if facts.warning:
        report.add("facts", "warn", f"{facts.warning}; {facts.hint}")
