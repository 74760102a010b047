"""`kohya-orch import` and `prepare --from`: a kohya_ss GUI file (or our own settings) as the
settings of a project, checked by the lint under the profile it will train with.

`import_file` converts (config/gui_import.py), then renders the arguments those settings
mean and lints them: a value the profile's hardware refuses (fp16 or xformers on Apple
Silicon) is dropped, the lint's words saying why, and the profile's value is used. What
the lint still finds is reported. `write_import` writes the result as a settings file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.gui_import import GuiImport, Row, convert_gui, read_gui_file
from kohya_orchestrator.config.parse import SD_SCRIPTS_TABLE, collect
from kohya_orchestrator.config.profiles import DEFAULT_PROFILE
from kohya_orchestrator.config.schema import SETTING_FOR_ARG, SPEC_BY_KEY
from kohya_orchestrator.errors import SettingsError

# Stand-ins for required settings the file does not give, so that its values can be linted.
_PLACEHOLDERS = {"name": "imported", "trigger": "imported", "images": "/", "model": "/"}


@dataclass
class ImportResult:
    """What a file becomes: the settings document, the rows, and what the lint says."""

    path: Path
    kind: str  # "gui" or "settings" (a kohya-orch settings file)
    document: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    profile: str = DEFAULT_PROFILE

    @property
    def missing(self) -> list[str]:
        """Required settings the file does not give (prepare's NAME, --images, --model)."""
        return [k for k in _PLACEHOLDERS if k not in self.document]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "kind": self.kind,
            "profile": self.profile,
            "settings": {k: v for k, v in self.document.items() if k != SD_SCRIPTS_TABLE},
            "sd_scripts": self.document.get(SD_SCRIPTS_TABLE, {}),
            "rows": [r.to_dict() for r in self.rows],
            "missing": self.missing,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def _our_settings(path: Path) -> dict[str, Any] | None:
    """The document of a kohya-orch settings file, or None when the file is not one."""
    from kohya_orchestrator.config.parse import read_settings_file

    if path.suffix.lower() != ".toml":
        return None
    try:
        doc = read_settings_file(path)
    except SettingsError:
        return None
    keys = set(doc) - {SD_SCRIPTS_TABLE}
    if not keys or not keys <= set(SPEC_BY_KEY) or not isinstance(doc.get("sd_scripts", {}), dict):
        return None
    problems: list[str] = []
    values, raw = collect(doc, f"--from {path}", from_cli=False, problems=problems)
    if problems:
        raise SettingsError(f"{len(problems)} problem(s) in {path}:", problems)
    return {**values, **({SD_SCRIPTS_TABLE: raw} if raw else {})}


def import_file(path: Path, *, profile: str | None = None) -> ImportResult:
    """A GUI preset, saved config or generated TOML (or our own settings file) as settings."""
    ours = _our_settings(path)
    if ours is not None:
        return ImportResult(path, "settings", ours, profile=ours.get("profile", DEFAULT_PROFILE))
    converted = convert_gui(read_gui_file(path), str(path))
    chosen = profile or DEFAULT_PROFILE
    if profile is not None:
        converted.settings["profile"] = profile
    result = ImportResult(path, "gui", {}, profile=chosen)
    _lint(converted, result)
    result.document = converted.document
    result.rows = converted.rows
    return result


def _lint(converted: GuiImport, result: ImportResult) -> None:
    """Lint the settings; drop what the profile's hardware refuses; keep what remains."""
    from kohya_orchestrator.config.settings import resolve_settings
    from kohya_orchestrator.layout import Layout
    from kohya_orchestrator.lint.linter import lint
    from kohya_orchestrator.project.args import build_args
    from kohya_orchestrator.sdscripts.trainers import for_script

    trainer = for_script(converted.script)
    for _ in range(5):  # each pass drops what the last one found; a handful at most
        doc = {**_PLACEHOLDERS, **converted.document}
        try:
            settings = resolve_settings(doc, source=str(result.path))
        except SettingsError as exc:
            result.errors = list(exc.problems)
            return
        args = build_args(settings, Layout(Path("/DEST")), trainer)
        report = lint(args, script=converted.script, profile=settings.profile, check_files=False)
        dropped = False
        for problem in report.errors:
            target = _target(problem.key, converted)
            if target is not None:
                converted.drop_target(target, f"{problem.message}; the profile's value is used")
                dropped = True
        if not dropped:
            result.errors = [p.render() for p in report.errors]
            result.warnings = [p.render() for p in report.warnings]
            return


def _target(key: str, converted: GuiImport) -> str | None:
    """The imported setting (or `sd_scripts.KEY`) an sd-scripts key's value came from."""
    if key in converted.raw:
        return f"sd_scripts.{key}"
    setting = SETTING_FOR_ARG.get(key) or (key if key in SPEC_BY_KEY else None)
    if setting is not None and setting in converted.settings and SPEC_BY_KEY[setting].profile:
        return setting
    return None


def import_text(result: ImportResult) -> str:
    """The settings file of an import: our commented layout, what the file did not give
    commented out, and how to use it."""
    from kohya_orchestrator.config.settings_file import initial_settings_text

    header = [
        f"# kohya-orch settings imported from {result.path.name} by `kohya-orch import`.",
        "# For a new project: kohya-orch prepare NAME --images DIR --dest DEST --model FILE \\",
        "#     --from THIS_FILE   (the command line's values win over this file's).",
        "# `kohya-orch settings` lists every setting with its kohya_ss GUI name.",
    ]
    values = dict(result.document)
    text = initial_settings_text(header=header, **values)
    tomllib.loads(text)  # written by us: it must parse
    return text


def write_import(result: ImportResult, out: Path, *, force: bool = False) -> Path:
    """Write the imported settings to `out`, atomically; never over a file without force."""
    from kohya_orchestrator.fsutil import atomic_write_text

    if out.exists() and not force:
        raise SettingsError(
            f"{out} exists; nothing was written.",
            [],
            "Use --force to replace it, or give another -o file.",
        )
    atomic_write_text(out, import_text(result))
    return out
