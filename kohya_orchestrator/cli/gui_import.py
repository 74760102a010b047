"""`kohya-orch import`: a kohya_ss GUI preset or saved config as kohya-orch settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kohya_orchestrator.cli.common import echo_json, handle_errors, json_option, verbose_option
from kohya_orchestrator.config.profiles import PROFILES

if TYPE_CHECKING:
    from kohya_orchestrator.project.gui_import import ImportResult

# Reasons that only say the field was empty, off or sd-scripts' own default: listed together.
_QUIET = ("empty", "off in the preset", "the same as sd-scripts' default")
_FLAGS = {"name": "NAME", "trigger": "--trigger", "images": "--images", "model": "--model"}


def report_lines(result: ImportResult) -> list[str]:
    """What became of each field, the lint's findings, and what the file does not give."""
    kind = "kohya-orch settings file" if result.kind == "settings" else "kohya_ss GUI file"
    lines = [f"{result.path} ({kind}; profile {result.profile}):"]
    groups: dict[str, list[str]] = {"setting": [], "raw": [], "look": [], "dropped": []}
    quiet: list[str] = []
    for row in result.rows:
        if row.fate == "dropped" and not row.warn and row.why.startswith(_QUIET):
            quiet.append(row.field)
        elif row.fate == "dropped":
            groups["look" if row.warn else "dropped"].append(row.line())
        else:
            groups[row.fate].append(row.line())
    titles = {
        "setting": "Settings:",
        "raw": "Raw sd-scripts keys (sd_scripts.KEY):",
        "look": "Dropped, worth a look:",
        "dropped": "Dropped (kohya-orch handles these itself):",
    }
    for key, title in titles.items():
        if groups[key]:
            lines += [title, *(f"  {line}" for line in groups[key])]
    if quiet:
        lines.append(f"Dropped, empty, off or sd-scripts' default: {', '.join(quiet)}")
    if result.errors or result.warnings:
        lines.append("Lint:")
        lines += [f"  error: {e}" for e in result.errors]
        lines += [f"  warning: {w}" for w in result.warnings]
    elif result.kind == "gui":
        lines.append("Lint: no problems found.")
    if result.missing:
        given = ", ".join(f"{k} ({_FLAGS[k]})" for k in result.missing)
        lines.append(f"Not in the file, give them to prepare: {given}")
    return lines


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the settings to this file (default: print them on stdout).",
)
@click.option(
    "--profile",
    type=click.Choice(tuple(PROFILES)),
    help="The machine the settings are for (default: the file's, else apple-silicon).",
)
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@json_option
@verbose_option
@handle_errors
def import_command(
    file: Path,
    out: Path | None,
    profile: str | None,
    force: bool,
    as_json: bool,
    verbose: bool,
) -> None:
    """Bring a kohya_ss GUI preset or saved config (JSON), or its TOML, over as settings.

    Each field becomes one of kohya-orch's settings (converted: the warmup percentage to a
    ratio, the CrossAttention choice to `attention`, max_train_epochs over epoch, ...), a
    raw sd-scripts key, or is dropped, and you are told which and why. Paths not on this
    machine are reported. The lint then runs under the profile: what the profile's
    hardware refuses (fp16, xformers on Apple Silicon) is dropped for the profile's value.
    Use the result with `prepare --from`; an existing -o file is kept unless --force.

    \b
    Examples:
      kohya-orch import "SDXL - LoRA AI_characters standard v1.1.json" -o hakone.toml
      kohya-orch prepare hakone --images imgs --dest train --model pony.safetensors \\
          --from hakone.toml
      kohya-orch import config_lora-20240101.toml --profile cuda --json
    """
    from kohya_orchestrator.errors import ConfigError
    from kohya_orchestrator.project.gui_import import import_file, import_text, write_import

    result = import_file(file, profile=profile)
    if as_json:
        echo_json(result.to_dict())
    else:
        for line in report_lines(result):
            click.echo(line, err=out is None)
    if result.errors:
        raise ConfigError(
            "The imported settings have errors; nothing was written:",
            result.errors,
            "Fix them in the file (or choose --profile), then import it again.",
        )
    if out is None:
        if not as_json:
            click.echo(import_text(result), nl=False)
        return
    from kohya_orchestrator.locking import folder_lock

    folder = out.absolute().parent
    if not folder.is_dir():
        raise click.BadParameter(f"{folder} is not a folder.", param_hint="'-o'")
    with folder_lock(folder, "import"):
        write_import(result, out, force=force)
    if not as_json:
        click.echo(f"Wrote {out}.")
        click.echo(
            f"Next: kohya-orch prepare NAME --images DIR --dest DEST --model FILE --from {out}"
        )


COMMANDS: list[click.Command] = [import_command]
