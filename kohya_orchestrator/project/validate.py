"""`kohya-orch validate FILE|DEST`: lint a training TOML, or the config a project renders.

A project folder is judged by its config.toml when it has one; before `config` wrote one, by
the config it would render from its settings (as `plan` does). Either way against the facts
of the sd-scripts checkout in use.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from kohya_orchestrator.layout import Layout
from kohya_orchestrator.lint.linter import lint_file
from kohya_orchestrator.lint.report import LintReport


def validate_target(
    target: Path,
    *,
    script: str | None = None,
    profile: str | None = None,
    facts: Path | None = None,
    sd_scripts: Path | None = None,
    python: str | None = None,
    launcher_args: Mapping[str, str | bool] | None = None,
) -> tuple[Path, LintReport]:
    """(the file judged, its report) for a TOML file or a project folder."""
    judge = functools.partial(
        lint_file,
        script=script,
        profile=profile,
        facts=facts,
        sd_scripts=sd_scripts,
        python=python,
        launcher_args=launcher_args,
    )
    if not target.is_dir():
        return target, judge(target)
    layout = Layout.at(target)
    if layout.config_file.is_file() or not layout.settings_file.is_file():
        return layout.config_file, judge(layout.config_file)
    from kohya_orchestrator.project.render import build_config

    rendered = build_config(layout, sd_scripts=sd_scripts, python=python)
    return layout.config_file, rendered.report
