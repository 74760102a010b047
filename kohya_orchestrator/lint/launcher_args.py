"""Keys a launcher adds on sd-scripts' command line (`validate FILE --arg KEY=VALUE`).

sd-scripts reads the TOML first and then its command line on top (read_config_from_file
parses sys.argv into the file's namespace), so a key given there wins over the file's.
Values are converted as argparse converts them: by the option's type, a switch given alone
is true, a list option splits on spaces.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from kohya_orchestrator.errors import ConfigError
from kohya_orchestrator.lint.report import LintReport
from kohya_orchestrator.sdscripts.contract import Contract

# "KEY" alone (a switch turned on) is kept as True until the facts say what KEY is.
RawArgs = dict[str, str | bool]
_OFF = ("false", "0", "")


def parse_launcher_args(pairs: Sequence[str]) -> RawArgs:
    """`["dataset_config=/d.toml", "xformers"]` -> {"dataset_config": "/d.toml",
    "xformers": True}; ConfigError for a pair that is not KEY=VALUE."""
    found: RawArgs = {}
    bad = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().removeprefix("--")
        if not key or not key.replace("_", "").isalnum():
            bad.append(pair)
            continue
        found[key] = value if sep else True
    if bad:
        raise ConfigError(
            f"--arg {bad[0]!r} is not KEY=VALUE",
            [],
            hint="write --arg dataset_config=/path/to/dataset.toml (a switch: --arg KEY)",
        )
    return found


def typed_launcher_args(
    raw: Mapping[str, str | bool], contract: Contract, report: LintReport
) -> dict[str, Any]:
    """The values argparse would make of them for `contract`'s script; the ones it would
    refuse are errors in `report` (sd-scripts stops before training)."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        opt = contract.options.get(key)
        if opt is None:
            report.error(
                key,
                f"--arg {key}: {contract.script} has no option --{key}, so it stops with "
                "'unrecognized arguments'",
                f"check the name in `{contract.script} --help`",
            )
            continue
        if opt.is_flag:
            values[key] = value if isinstance(value, bool) else value.lower() not in _OFF
            continue
        if isinstance(value, bool):
            report.error(
                key, f"--arg {key} has no value: argparse refuses it", f"write --arg {key}=VALUE"
            )
            continue
        items = shlex.split(value) if opt.is_list else [value]
        try:
            converted = [_convert(opt.type, item) for item in items]
        except ValueError:
            report.error(
                key,
                f"--arg {key}={value}: argparse refuses it (not {opt.type})",
                f"give --arg {key} a value of type {opt.type}",
            )
            continue
        values[key] = converted if opt.is_list else converted[0]
    return values


def _convert(type_name: str | None, item: str) -> Any:
    if type_name == "int":
        return int(item)
    if type_name in ("float", "int_or_float"):
        number = float(item)
        return int(number) if type_name == "int_or_float" and number.is_integer() else number
    return item
