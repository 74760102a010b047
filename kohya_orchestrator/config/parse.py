"""Reading settings values: the file's TOML, `--set KEY=VALUE` strings, kinds and checks.

Every problem is collected as a line naming the source, the key, the value and the fix;
`settings.resolve_settings` raises them together.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.concepts import coerce_concepts
from kohya_orchestrator.config.schema import ALIASES, SPEC_BY_KEY
from kohya_orchestrator.config.spec import AS_IS, FLAG, Spec, parse_resolution
from kohya_orchestrator.config.tomlquote import toml_value
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.fsutil import read_regular_text
from kohya_orchestrator.units import decimal_comma

SD_SCRIPTS_TABLE = "sd_scripts"
# `0,000025`: the decimal comma the user writes. Bare in TOML it is a syntax error, so the
# file reader quotes the value of `key = 1,5` lines, which no valid TOML contains, and the
# setting's kind decides: a number reads it as 1.5, `resolution = 768,768` as "768,768".
_COMMA_LINE = re.compile(r"^(\s*[A-Za-z0-9_.-]+\s*=\s*)([+-]?\d+\s*,\s*\d+)(\s*(?:#.*)?)$")
# sd-scripts option types that read `1,5` as the number 1.5 ([sd_scripts] keys).
_NUMBER_TYPES = {"float", "int_or_float"}
# What an sd-scripts option (an argparse dest) is called: `max_grad_norm`, `v2`.
_OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def did_you_mean(key: str) -> str:
    if key in ALIASES:
        spec = SPEC_BY_KEY[ALIASES[key]]
        if spec.render == FLAG and key in (spec.choices or ()):
            return f" (did you mean {spec.key} = {fmt(key)}?)"
        return f" (did you mean {ALIASES[key]!r}?)"
    close = difflib.get_close_matches(key, list(SPEC_BY_KEY), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fmt(value: Any) -> str:
    try:
        return toml_value(value)
    except ValueError:
        return repr(value)


def _coerce(spec: Spec, value: Any, *, from_cli: bool) -> tuple[Any, str | None]:
    """The value converted to the setting's kind, or (None, what is wrong and the fix)."""
    kind = spec.kind
    if from_cli and isinstance(value, str):
        value = _cli_scalar(kind, value)
    if kind == "concepts":
        return coerce_concepts(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, "must be true or false (without quotes)"
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            result: Any = value
        elif decimal_comma(value) is not None:
            return None, "must be a whole number, not a decimal"
        else:
            return None, "must be a whole number (without quotes)"
    elif kind == "float":
        comma = decimal_comma(value)
        value = value if comma is None else comma
        if isinstance(value, int | float) and not isinstance(value, bool):
            result = float(value)
        else:
            return None, "must be a number such as 2.5e-5 or 0,000025"
    elif kind == "resolution":
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None, 'must be "WIDTH,HEIGHT" such as "512,512"'
        try:
            w, h = parse_resolution(value)
        except ValueError:
            return None, 'must be "WIDTH,HEIGHT" such as "512,512" (each at least 64)'
        return f"{w},{h}", None
    else:
        if not isinstance(value, str):
            return None, "must be text in quotes"
        if not spec.allows(value):
            options = spec.choices or ()
            close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            return None, f"must be one of {', '.join(options)}{maybe}"
        return value, None
    if spec.minimum is not None and result < spec.minimum:
        return None, f"must be at least {spec.minimum:g}"
    return result, None


def coerce_setting(spec: Spec, value: Any, *, text: bool) -> tuple[Any, str | None]:
    """A value converted to a setting's kind: (value, None) or (None, what is wrong and the
    fix); `text` reads a string the way --set does (`768,768`, `0,000025`, `yes`)."""
    return _coerce(spec, value, from_cli=text)


def _cli_scalar(kind: str, text: str) -> Any:
    """A --set value read as the setting's kind: `768,768`, `0,000025`, `yes`, `cosine`."""
    raw = text.strip()
    if kind == "bool":
        low = raw.lower()
        return True if low in _TRUE else False if low in _FALSE else raw
    if kind == "int":
        return int(raw) if re.fullmatch(r"[+-]?\d+", raw) else raw
    if kind == "float":
        comma = decimal_comma(raw)
        if comma is not None:
            return comma
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "concepts":
        return _toml_scalar(raw)
    if raw[:1] in {'"', "'"}:
        parsed = _toml_scalar(raw)
        if isinstance(parsed, str):
            return parsed
    return text


def _toml_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _raw_number(key: str, value: Any) -> Any:
    """A `1,5` string of an [sd_scripts] key becomes 1.5 only where sd-scripts wants a number.

    The key may be a float option, or a text one such as `resolution = "768,768"`, which
    must stay text; the training script is not known yet, so either script's facts decide.
    """
    comma = decimal_comma(value)
    if comma is not None and _option_type(key) in _NUMBER_TYPES:
        return comma
    return value


def _option_type(key: str) -> str | None:
    from kohya_orchestrator.sdscripts.contract import SCRIPTS, load_contract

    for script in SCRIPTS:
        option = load_contract(script).options.get(key)
        if option is not None:
            return option.type
    return None


def split_override(item: str) -> tuple[str, str] | None:
    """`"epochs=10"` -> ("epochs", "10"); None when it is not KEY=VALUE. The one format check
    of `--set` (the CLI option and the settings resolver both use it)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    return (key, raw) if sep and key else None


def _shadowed() -> dict[str, str]:
    """sd-scripts keys a setting renders to (and the settings' own names) -> the setting."""
    found = {spec.key: spec.key for spec in SPEC_BY_KEY.values()}
    for spec in SPEC_BY_KEY.values():
        if spec.arg:
            found.setdefault(spec.arg, spec.key)
        if spec.render == FLAG:
            found |= {choice: spec.key for choice in spec.choices or ()}
    return found


# A raw key that is one of our settings is refused, not applied: `plan`, `xyz`, the notes
# and `results` all follow the setting, so a raw network_dim would train one rank while
# everything else speaks of another.
SHADOWED = _shadowed()


def shadow_problem(key: str, value: Any, *, from_cli: bool) -> str | None:
    """Why a raw [sd_scripts] key is refused (it is a setting, or what one renders to)."""
    setting = SHADOWED.get(key)
    if setting is None:
        return None
    spec = SPEC_BY_KEY[setting]
    if spec.render == FLAG and key != setting:
        shown = fmt(key)
    elif key == setting or (spec.arg == key and spec.render == AS_IS):
        shown = fmt(value)
    else:
        shown = "..."
    what = (
        f"'{key}' is a kohya-orch setting, not an sd-scripts key"
        if key == setting
        else f"'{key}' is what the setting '{setting}' renders to"
    )
    if from_cli:
        return f"sd_scripts.{key}: {what}; use --set {setting}={shown.strip(chr(34))} instead"
    return (
        f"[sd_scripts] {key}: {what}; set `{setting} = {shown}` at the top level instead "
        "(above any [table] line)"
    )


def parse_overrides(overrides: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """`--set` strings -> ({key: raw value}, problems). `sd_scripts.KEY=V` sets a raw key."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for item in overrides:
        split = split_override(item)
        if split is None:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=10")
            continue
        key, raw = split
        if key.startswith(SD_SCRIPTS_TABLE + "."):
            sub = key[len(SD_SCRIPTS_TABLE) + 1 :]
            raw_value = _toml_scalar(raw.strip())
            values.setdefault(SD_SCRIPTS_TABLE, {})[sub] = raw_value
            continue
        values[key] = raw
    return values, problems


_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=")


def _last_wins(text: str, name: str, notes: list[str] | None) -> str:
    """A top-level key written twice: the later line wins (the earlier is commented out), as
    a line appended to the file is meant to. Only one-line values; TOML reports the rest."""
    lines = text.split("\n")
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.lstrip().startswith("["):
            break  # a table begins: its keys are not top-level keys
        match = _ASSIGNMENT.match(line)
        if match is None:
            continue
        key = match.group(1)
        earlier = seen.get(key)
        seen[key] = i
        if earlier is None or not _one_line_value(lines[earlier]):
            continue
        lines[earlier] = "# " + lines[earlier]
        if notes is not None:
            notes.append(
                f"{key} is set twice in {name} (lines {earlier + 1} and {i + 1}): the later "
                "line wins; delete the other to silence this note."
            )
    return "\n".join(lines)


def _one_line_value(line: str) -> bool:
    try:
        tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return False
    return True


def read_settings_file(path: Path, notes: list[str] | None = None) -> dict[str, Any]:
    """The raw TOML document of a settings file (decimal commas accepted; a key written
    twice: the later line wins, with a note appended to `notes`)."""
    try:
        # utf-8-sig: an editor's byte-order mark is not a TOML statement.
        text = read_regular_text(path, encoding="utf-8-sig")
    except FileNotFoundError:
        raise SettingsError(
            f"No settings file: {path}",
            [],
            "Run `kohya-orch prepare NAME --images DIR --dest DEST --model FILE` first.",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"Cannot read the settings file {path}: {exc}", []) from None
    text = "\n".join(_COMMA_LINE.sub(r'\1"\2"\3', line) for line in text.split("\n"))
    text = _last_wins(text, path.name, notes)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{path} is not valid TOML: {exc}",
            [],
            'Fix that line; text values need quotes, e.g. lr_scheduler = "cosine".',
        ) from None


def collect(
    doc: Mapping[str, Any], source: str, *, from_cli: bool, problems: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validated (settings, raw sd-scripts keys) from one source; problems appended."""
    out: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for key, value in doc.items():
        if key == SD_SCRIPTS_TABLE:
            if not isinstance(value, Mapping):
                problems.append(f"{source}: {key} must be a table ([{SD_SCRIPTS_TABLE}])")
                continue
            for sub, sub_value in value.items():
                shadow = shadow_problem(sub, sub_value, from_cli=from_cli)
                if not _OPTION_NAME.fullmatch(sub):
                    problems.append(
                        f"{source}: [{SD_SCRIPTS_TABLE}] key {sub!r} is not an sd-scripts "
                        "option name (letters, digits and _); it cannot go into config.toml"
                    )
                elif shadow is not None:
                    problems.append(f"{source}: {shadow}")
                elif isinstance(sub_value, Mapping):
                    problems.append(
                        f"{source}: [{SD_SCRIPTS_TABLE}] {sub} is a table; sd-scripts reads "
                        "only plain keys there"
                    )
                else:
                    raw[sub] = _raw_number(sub, sub_value)
            continue
        spec = SPEC_BY_KEY.get(key)
        if spec is None:
            problems.append(f"{source}: unknown setting {key!r}{did_you_mean(key)}")
            continue
        coerced, error = _coerce(spec, value, from_cli=from_cli)
        if error is not None:
            problems.append(f"{source}: {key} = {fmt(value)} {error}")
            continue
        out[key] = coerced
    return out, raw
