"""Lint an sd-scripts training TOML against the argument facts: keys, types, choices, rules.

sd-scripts accepts unknown keys silently and never type-checks values from the file (see
SD_SCRIPTS.md), so a typo or a GUI name trains something else without a word. `lint` flattens
the document as sd-scripts does and reports every problem at once, errors and warnings apart.
Key and type checks live in lint_types.py, cross-key rules in lint_rules.py, filesystem rules
in lint_files.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kohya_orchestrator.config import profiles as _profiles
from kohya_orchestrator.fsutil import read_regular_bytes, read_regular_text
from kohya_orchestrator.lint.dataset import is_dataset_config, lint_dataset_config
from kohya_orchestrator.lint.keys import typed_values
from kohya_orchestrator.lint.names import GUI_NAMES
from kohya_orchestrator.lint.registry import apply_rules
from kohya_orchestrator.lint.report import LintReport, Problem, RuleInput, shown
from kohya_orchestrator.sdscripts.contract import (
    DEFAULT_SCRIPT,
    SCRIPTS,
    Contract,
    Flattened,
    flatten,
    load_contract,
    read_facts_file,
)
from kohya_orchestrator.sdscripts.facts import choose_facts
from kohya_orchestrator.sdscripts.trainers import Trainer, for_script

PROFILES = tuple(_profiles.PROFILES)
__all__ = ["GUI_NAMES", "LintReport", "Problem", "lint", "lint_file"]
_PROFILE_COMMENT = re.compile(r'profile: "([a-z-]+)"')


def report_flattening(flattened: Flattened, report: LintReport) -> None:
    """What sd-scripts' flattening loses: tables nested too deep, keys set in several tables."""
    nested = {key for _, key, _ in flattened.nested}
    for section, key, inner_keys in flattened.nested:
        report.error(
            f"{section}.{key}",
            f"table [{section}.{key}] is nested two levels deep: sd-scripts flattens "
            f"only one level, so its keys ({', '.join(inner_keys) or 'none'}) are never read",
            f"move these keys into [{section}] or another top-level table",
        )
    for key, places in flattened.places.items():
        if len(places) > 1 and key not in nested:
            report.warn(
                key,
                f"'{key}' is set {len(places)} times ({', '.join(places)}): sd-scripts uses the "
                f"last one, {shown(flattened.values[key])}",
                f"keep one '{key}'",
            )


def lint(
    doc: Mapping[str, Any] | Flattened,
    *,
    script: str = DEFAULT_SCRIPT,
    contract: Contract | None = None,
    config_path: Path | None = None,
    profile: str | None = None,
    check_files: bool = True,
    trainer: Trainer | None = None,
) -> LintReport:
    """Every problem sd-scripts would ignore, crash on, or silently misread, all at once.

    `doc` is the parsed TOML (nested, as `toml.load` returns it), or the one flattening of
    it a command already made. `profile` is the hardware the run is for: "apple-silicon" and
    "cpu" make the options that fail there errors, "cuda" drops those checks, None reports
    the Apple-Silicon ones as warnings. `check_files` looks at the paths and the image
    folders named in the file. `trainer` is the family judged (default: the script's).
    """
    contract = contract or load_contract(script)
    report = LintReport(
        script=contract.script,
        contract=contract.describe(),
        config_path=str(config_path) if config_path else None,
        profile=profile,
    )
    flattened = doc if isinstance(doc, Flattened) else flatten(doc)
    report_flattening(flattened, report)
    flat = flattened.values
    values = typed_values(flat, contract, report, {key for _, key, _ in flattened.nested})
    family = trainer or for_script(contract.script, v2=bool(values.get("v2")))
    if family.family in ("flux", "sd3"):
        report.note(
            "",
            f"{family.label}: keys, types and choices are checked against {contract.script}'s "
            "facts, with the rules every script shares; the SD 1.x/SDXL-only rules "
            "(clip_skip, bucket steps of 64) do not apply",
            f"check the {family.label}-only settings in `{contract.script} --help`",
        )
    apply_rules(RuleInput(values, flat, contract, family, report, profile), check_files=check_files)
    return report


def read_toml_file(path: Path, report: LintReport) -> dict[str, Any] | None:
    """Parse with `toml` as sd-scripts does; flag files that `tomllib` reads differently."""
    import tomllib

    import toml

    try:
        text = read_regular_text(path)
    except UnicodeDecodeError as exc:
        report.error("", f"{path} is not UTF-8 text (byte {exc.start})", "save it as UTF-8")
        return None
    if text.lstrip("\ufeff \t\r\n").startswith("{") and _json_object(text) is not None:
        report.error(
            "",
            f"{path} is a kohya_ss GUI file (JSON), not a training TOML: sd-scripts reads "
            "only TOML with --config_file",
            f"use `kohya-orch import {path}` to turn it into kohya-orch settings, or validate "
            "the TOML the GUI generated from it",
        )
        return None
    bom = text.startswith("\ufeff")
    try:
        doc: dict[str, Any] = toml.loads(text)
    except toml.TomlDecodeError as exc:
        if bom:
            report.error(
                "",
                f"{path} starts with a UTF-8 BOM (byte order mark): sd-scripts' parser "
                f"(toml) stops there (line 1, column 1): {exc.msg}",
                "save the file as UTF-8 without BOM (in Notepad: UTF-8, not UTF-8 with BOM)",
            )
            return None
        hint = "fix the syntax there; strings need quotes, tables [name]"
        try:
            tomllib.loads(text)
            hint = (
                "tomllib reads this file, but sd-scripts' parser (toml 0.10.2) does not; "
                "arrays must hold one type there (write [1.0, 0.5], not [1, 0.5])"
            )
        except tomllib.TOMLDecodeError as strict_exc:
            hint = f"tomllib says: {strict_exc}; {hint}"
        report.error(
            "",
            f"{path} is not valid TOML for sd-scripts' parser (line {exc.lineno}, "
            f"column {exc.colno}): {exc.msg}",
            hint,
        )
        return None
    except (IndexError, ValueError, TypeError) as exc:
        # toml 0.10.2 raises plain errors on some malformed input.
        report.error(
            "",
            f"{path} is not valid TOML for sd-scripts' parser: {exc}",
            "fix the syntax; strings need quotes, tables [name]",
        )
        return None
    first = next(iter(doc), "")
    if bom and first.startswith("\ufeff"):
        report.error(
            first[1:],
            f"{path} starts with a UTF-8 BOM (byte order mark): sd-scripts' parser (toml) "
            f"reads the first key as '\\ufeff{first[1:]}', so '{first[1:]}' is never read",
            "save the file as UTF-8 without BOM (in Notepad: UTF-8, not UTF-8 with BOM)",
        )
        del doc[first]
        return doc
    try:
        strict_doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        report.warn(
            "",
            f"{path} is read by sd-scripts' parser (toml) but is not valid TOML 1.0: {exc}",
            "other tools (and tomllib) will refuse it; fix the syntax",
        )
        return doc
    if _normalise(strict_doc) != _normalise(doc):
        report.warn(
            "",
            f"{path} is read differently by sd-scripts' parser (toml) and by tomllib",
            "simplify the values (plain strings, numbers, arrays of one type)",
        )
    return doc


def _dataset_report(
    path: Path,
    doc: dict[str, Any],
    parsed: LintReport,
    given: Mapping[str, str | bool],
    profile: str | None,
    check_files: bool,
) -> LintReport:
    """A dataset config judged alone (masked_loss only when --arg says so)."""
    from kohya_orchestrator.sdscripts.versions import NEWEST

    report = LintReport(
        script="dataset config",
        contract=f"library/config_util.py (dataset config) at sd-scripts {NEWEST.describe()}",
        config_path=str(path),
        profile=profile,
    )
    report.extend(parsed)
    masked = given.get("masked_loss") not in (None, False, "false", "0")
    lint_dataset_config(doc, report, masked_loss=masked, check_files=check_files, alone=True)
    return report


def _json_object(text: str) -> dict[str, Any] | None:
    import json

    try:
        doc = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    return value


def header_hints(text: str) -> tuple[str | None, str | None]:
    """(script, profile) named in the leading comments of a config kohya-orch rendered.

    The templates start with "... for sd-scripts' sdxl_train_network.py ..." and
    'profile: "cuda"'; a file without them (a GUI config) gives (None, None).
    """
    script = profile = None
    for line in text.splitlines()[:12]:
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        if script is None:
            script = next((s for s in SCRIPTS if re.search(rf"\b{s}", line)), None)
        match = _PROFILE_COMMENT.search(line)
        if profile is None and match and match.group(1) in PROFILES:
            profile = match.group(1)
    return script, profile


def lint_file(
    path: Path,
    script: str | None = None,
    *,
    contract: Contract | None = None,
    profile: str | None = None,
    check_files: bool = True,
    facts: Path | None = None,
    sd_scripts: Path | None = None,
    python: str | None = None,
    launcher_args: Mapping[str, str | bool] | None = None,
) -> LintReport:
    """`lint` a TOML file; a syntax error is reported (with line and column), not raised.

    Without `script`/`contract`, the script is chosen from the file (script_choice.py: the
    header kohya-orch writes, network_module, the model, ...) and the report says why; the
    profile named in the header is used unless `profile` is given. `facts` is an explicit
    argument facts file (see contract.load_contract); without one the facts are those of the
    sd-scripts checkout in use (facts.choose_facts). `launcher_args` are keys a launcher adds
    on the command line (launcher_args.py): they win over the file's.
    """
    from kohya_orchestrator.lint.launcher_args import typed_launcher_args
    from kohya_orchestrator.sdscripts.script_choice import choose_script, model_family_of

    path = Path(path)
    text = ""
    if path.is_file():
        try:
            text = read_regular_bytes(path).decode("utf-8", errors="replace")
        except OSError:
            text = ""
    named_script, named_profile = header_hints(text)
    parsed = LintReport(script="", contract="")
    doc = read_toml_file(path, parsed) if path.is_file() else None
    flattened = flatten(doc) if doc is not None else None
    given = dict(launcher_args or {})
    flat = {**(flattened.values if flattened else {}), **given}
    if doc is not None and is_dataset_config(doc):
        return _dataset_report(path, doc, parsed, given, profile, check_files)
    trainer = None
    reason = None
    if contract is None and script is None and facts is not None and named_script is None:
        script = read_facts_file(facts).script
        reason = "the script of the facts file"
    if contract is None and script is None:
        family = model_family_of(flat) if check_files else None
        choice = choose_script(flat, header_script=named_script, model_family=family)
        script, trainer, reason = choice.script, choice.trainer, choice.reason
    choice_line = None
    if contract is None and facts is not None:
        contract = load_contract(script or DEFAULT_SCRIPT, facts=facts)
    elif contract is None:
        facts_choice = choose_facts(script or DEFAULT_SCRIPT, sd_scripts=sd_scripts, python=python)
        contract, choice_line = facts_choice.contract, facts_choice
    if profile is None:
        profile = named_profile
    report = LintReport(
        script=contract.script,
        contract=contract.describe(),
        config_path=str(path),
        profile=profile,
        facts=choice_line.line() if choice_line is not None else None,
        script_reason=reason,
    )
    if choice_line is not None and choice_line.warning:
        report.warn("", choice_line.warning, choice_line.hint or "")
    if not path.is_file():
        report.error("", f"{path} does not exist", "check the path of the training TOML")
        return report
    report.extend(parsed)
    if flattened is None:
        return report
    if given:
        typed = typed_launcher_args(given, contract, report)
        flattened.values.update(typed)
        for key in typed:
            flattened.places[key] = ["the command line"]
    full = lint(
        flattened,
        script=contract.script,
        contract=contract,
        config_path=path,
        profile=profile,
        check_files=check_files,
        trainer=trainer,
    )
    report.extend(full)
    return report
