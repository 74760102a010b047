"""Key and type checks of `validate.lint`: unknown keys (GUI names, did-you-mean), types, choices.

Values from a TOML file reach sd-scripts unconverted (read_config_from_file never applies the
argparse `type`), so each value is checked against the option's type name in the facts.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from kohya_orchestrator.lint.names import ELSEWHERE, GUI_NAMES, foreign_name
from kohya_orchestrator.lint.report import LintReport, shown
from kohya_orchestrator.sdscripts import choices
from kohya_orchestrator.sdscripts.contract import Contract, Option, scripts_with_option
from kohya_orchestrator.units import decimal_comma


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


_TYPE_WORDS = {
    "int": ("an integer", "integers"),
    "float": ("a number", "numbers"),
    "int_or_float": ("a number", "numbers"),
    "str": ("a string", "strings"),
    "Path": ("a path string", "path strings"),
}


def _scalar_ok(type_name: str | None, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if type_name == "int":
        return isinstance(value, int)
    if type_name in ("float", "int_or_float"):
        return isinstance(value, int | float) and not (
            isinstance(value, float) and math.isnan(value)
        )
    return isinstance(value, str)


def _converted(type_name: str | None, value: Any) -> Any:
    """The value the user most likely meant, or None when there is no obvious one."""
    try:
        if type_name == "int":
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                return int(value.strip())
        if type_name in ("float", "int_or_float") and isinstance(value, str):
            comma = decimal_comma(value)
            return comma if comma is not None else float(value.strip())
        if (
            type_name in ("str", "Path")
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        ):
            return str(value)
    except ValueError:
        return None
    return None


def _check_flag(report: LintReport, key: str, value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        word = value.strip().lower()
        report.error(
            key,
            f"'{key}' is a switch: it must be true or false, not the string {shown(value)}",
            f"write {key} = {word} without quotes",
        )
        return
    if key == "xformers" and isinstance(value, str):
        hint = 'write sdpa = true (the kohya_ss GUI\'s xformers = "sdpa") or xformers = true'
    elif isinstance(value, int) and value in (0, 1):
        # The kohya_ss GUI writes switches as 0/1; sd-scripts reads the number's truth value,
        # so the run does what was meant: a note.
        report.note(
            key,
            f"'{key}' is a switch: write true or false, not an integer ({value}); sd-scripts "
            f"reads it as {'true' if value else 'false'}",
            f"write {key} = {'true' if value else 'false'}",
        )
        return
    else:
        hint = f"write {key} = true or {key} = false"
    report.error(
        key,
        f"'{key}' is a switch: it must be true or false, not {_kind_of(value)} ({shown(value)})",
        hint,
    )


def _check_list(report: LintReport, key: str, opt: Option, value: Any) -> bool:
    one, many = _TYPE_WORDS.get(opt.type or "str", ("a string", "strings"))
    if not isinstance(value, list):
        # main's text_encoder_lr still takes one number (train_network keeps it compatible).
        if key == "text_encoder_lr" and _scalar_ok(opt.type, value):
            return True
        fixed = _converted(opt.type, value) if not _scalar_ok(opt.type, value) else value
        hint = (
            f"write {key} = [{shown(fixed)}]"
            if fixed is not None
            else f"write {key} = [...] with {many}"
        )
        report.error(
            key,
            f"'{key}' must be a list (TOML array) of {many}, not {_kind_of(value)} "
            f"({shown(value)})",
            hint,
        )
        return False
    for i, item in enumerate(value, 1):
        if not _scalar_ok(opt.type, item):
            report.error(
                key,
                f"'{key}' must be a list of {many}, but item {i} is {_kind_of(item)} "
                f"({shown(item)})",
                f"write every item of {key} as {one}",
            )
            return False
    return True


def _check_scalar(report: LintReport, key: str, opt: Option, value: Any) -> bool:
    if _scalar_ok(opt.type, value):
        return True
    one, _ = _TYPE_WORDS.get(opt.type or "str", ("a string", "strings"))
    if key == "resolution" and isinstance(value, int | float) and not isinstance(value, bool):
        n = int(value)
        report.error(
            key,
            f"'resolution' must be a string like \"{n},{n}\", not {_kind_of(value)} ({value!r}): "
            "sd-scripts crashes on a number",
            f'write resolution = "{n},{n}"',
        )
        return False
    if key == "resolution" and isinstance(value, list) and len(value) == 2:
        text = ",".join(str(v) for v in value)
        report.error(
            key,
            f"'resolution' must be a string like \"{text}\", not a list ({shown(value)})",
            f'write resolution = "{text}"',
        )
        return False
    fixed = _converted(opt.type, value)
    hint = f"write {key} = {shown(fixed)}" if fixed is not None else f"write {key} as {one}"
    if isinstance(value, str) and fixed is not None:
        hint += " without quotes"
    report.error(key, f"'{key}' must be {one}, not {_kind_of(value)} ({shown(value)})", hint)
    return False


def _check_choices(
    report: LintReport, key: str, opt: Option, value: Any, flat: Mapping[str, Any]
) -> None:
    if opt.choices is None:
        return
    allowed = [c for c in opt.choices if c is not None]
    if value in allowed:
        return
    # kohya_ss GUI values sd-scripts accepts from a config file (argparse checks choices only
    # on the command line): 75 tokens is the default length, and dynamo_backend is read only
    # with torch_compile (the GUI writes "no").
    if key == "max_token_length" and value == 75:
        return
    if key == "dynamo_backend" and not flat.get("torch_compile"):
        return
    if key == "max_token_length" and isinstance(value, int) and value > 75:
        used = token_length_used(value)
        report.warn(
            key,
            f"'max_token_length' = {value} is not 75, 150 or 225: sd-scripts reads captions "
            f"in chunks of 75 tokens and uses {used}",
            f"write max_token_length = {used}",
        )
        return
    listed = ", ".join(shown(c) for c in allowed)
    hint = f"use one of: {listed}"
    if isinstance(value, str):
        lowered = {str(c).lower(): c for c in allowed}
        close = lowered.get(value.lower()) or next(
            iter(difflib.get_close_matches(value, [str(c) for c in allowed], n=1)), None
        )
        if close is not None:
            hint = f"did you mean {shown(close)}? ({hint})"
    report.error(key, f"'{key}' = {shown(value)} is not one of the choices: {listed}", hint)


def _unknown_key(
    report: LintReport, key: str, value: Any, contract: Contract, flat: Mapping[str, Any]
) -> None:
    if key in GUI_NAMES or key in ELSEWHERE:
        foreign_name(report, key, value, contract, flat)
        return
    if key in ("datasets", "general") or (
        isinstance(value, list) and value and isinstance(value[0], dict)
    ):
        report.error(
            key,
            f"unknown key '{key}': [[{key}]] tables belong in a dataset config, "
            "not in the training TOML; sd-scripts ignores them here",
            'move them into a separate file and set dataset_config = "/path/to/it.toml"',
        )
        return
    if value is False or value == "":
        # A switch the script lacks, turned off, or an empty field: ignored, and it would
        # change nothing if it were read.
        report.note(
            key,
            f"'{key}' = {shown(value)} is not an option of {contract.script}: sd-scripts "
            f"ignores it, and {shown(value)} changes nothing",
            "remove it",
        )
        return
    others = [s for s in scripts_with_option(key) if s != contract.script]
    if others:
        # The GUI writes every model family's fields; this script never reads them.
        report.warn(
            key,
            f"'{key}' is an option of {' and '.join(others)}, not of {contract.script}: "
            "sd-scripts ignores it here",
            f"remove it (or train with {others[0]})",
        )
        return
    names = contract.names
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    if not close:
        lowered = {n.lower(): n for n in names}
        if key.lower() in lowered:
            close = [lowered[key.lower()]]
    if close:
        hint = f"did you mean '{close[0]}'?"
    else:
        hint = f"remove it, or check the name in `{contract.script} --help`"
    report.error(key, f"unknown key '{key}': sd-scripts ignores it silently", hint)


def token_length_used(value: int) -> int:
    """The caption length sd-scripts' tokenizer really uses for a max_token_length (chunks
    of 75 tokens, as strategy_base._get_input_ids cuts them)."""
    return 75 * len(range(1, value + 2 - 77 + 2, 75))


def _ignored_as_unset(report: LintReport, key: str, opt: Option, value: Any) -> bool:
    """Values sd-scripts reads as "not set": `false` for a path it tests by truth (`if not
    args.resume`), "" for a list option it loops over (no arguments)."""
    if value is False and key in choices.TESTED_BY_TRUTH:
        report.note(
            key,
            f"'{key}' = false is not {_TYPE_WORDS.get(opt.type or 'str', ('a string',))[0]}, "
            f"but sd-scripts reads it as unset (it tests `if not args.{key}`)",
            f"remove {key}",
        )
        return True
    if value == "" and opt.is_list:
        report.note(
            key,
            f"'{key}' = \"\" is not a list, but sd-scripts reads it as no arguments",
            f"write {key} = [] or remove it",
        )
        return True
    return False


def typed_values(
    flat: Mapping[str, Any], contract: Contract, report: LintReport, nested: set[str]
) -> dict[str, Any]:
    """Check keys and types; return the known keys whose values have the right type."""
    good: dict[str, Any] = {}
    for key, value in flat.items():
        if key in nested:
            continue
        opt = contract.options.get(key)
        if opt is None:
            _unknown_key(report, key, value, contract, flat)
            continue
        if opt.is_flag:
            _check_flag(report, key, value)
            if isinstance(value, bool):
                good[key] = value
            elif isinstance(value, int) and value in (0, 1):
                good[key] = bool(value)
            continue
        if _ignored_as_unset(report, key, opt, value):
            continue
        ok = (
            _check_list(report, key, opt, value)
            if opt.is_list
            else _check_scalar(report, key, opt, value)
        )
        if ok:
            if not opt.is_list:
                _check_choices(report, key, opt, value, flat)
            good[key] = value
    return good
