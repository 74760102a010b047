"""CLI: `validate` (lint an sd-scripts training TOML) and the `contract` group (refresh, show)."""

from __future__ import annotations

from pathlib import Path

import click

from kohya_orchestrator.cli.common import (
    echo_json,
    handle_errors,
    json_option,
    python_option,
    sd_scripts_option,
    verbose_option,
)
from kohya_orchestrator.errors import OrchError
from kohya_orchestrator.sdscripts.contract import LINTED_SCRIPTS
from kohya_orchestrator.sdscripts.script_choice import HEADER_REASON

SCRIPT_CHOICE = click.Choice(LINTED_SCRIPTS)
PROFILE_CHOICE = click.Choice(["apple-silicon", "cuda", "cpu"])


@click.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--script",
    type=SCRIPT_CHOICE,
    default=None,
    help="The training script the file is for (default: chosen from the file: its header, "
    "network_module, the model; the output says which and why).",
)
@click.option(
    "--arg",
    "launcher_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="A key the launcher adds on sd-scripts' command line (it wins over the file's), "
    "e.g. --arg dataset_config=/path/dataset.toml; a switch alone: --arg KEY. Repeatable.",
)
@click.option(
    "--profile",
    type=PROFILE_CHOICE,
    default=None,
    help="Hardware the run is for: options that fail there become errors (default: the "
    "profile named in the file's header; none: Mac-only problems are warnings).",
)
@click.option(
    "--contract",
    "contract_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Argument facts JSON to check against (default: those of the sd-scripts checkout).",
)
@sd_scripts_option
@python_option
@json_option
@verbose_option
@handle_errors
def validate_command(
    file: Path,
    script: str | None,
    launcher_args: tuple[str, ...],
    profile: str | None,
    contract_file: Path | None,
    sd_scripts: Path | None,
    python: str | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Lint an sd-scripts training TOML: every problem at once, errors and warnings apart.

    FILE is a training TOML, a dataset config ([[datasets]]), or a project folder (its
    config.toml). Flattens the tables as sd-scripts does, then reports unknown keys (with
    did-you-mean and the kohya_ss GUI's names), wrong types, values outside the choices, and
    the rules that make sd-scripts crash or silently train something else. Errors: sd-scripts
    would crash, refuse, or train something other than the file says; warnings: it starts,
    likely not as meant; notes: ignored keys that change nothing. Exit 1 when there is an
    error, 0 otherwise.

    \b
    Examples:
      kohya-orch validate project/config.toml
      kohya-orch validate ~/lora/yumoto_hakone
      kohya-orch validate gui_config.toml --script train_network.py --json
      kohya-orch validate config.toml --profile apple-silicon
      kohya-orch validate config.toml --arg dataset_config=/data/dataset.toml
    """
    from kohya_orchestrator.lint.launcher_args import parse_launcher_args
    from kohya_orchestrator.project.validate import validate_target

    try:
        given = parse_launcher_args(launcher_args)
    except OrchError as exc:
        raise click.BadParameter(exc.render(), param_hint="--arg") from None
    file, report = validate_target(
        file,
        script=script,
        launcher_args=given,
        profile=profile,
        facts=contract_file,
        sd_scripts=sd_scripts,
        python=python,
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        shown = f", profile {report.profile}" if report.profile else ""
        click.echo(f"{file}: checked against {report.contract}{shown}")
        # kohya-orch's own configs name their script in the header: nothing to explain.
        if report.script_reason and report.script_reason != HEADER_REASON:
            click.echo(f"script: {report.script} ({report.script_reason})")
        if report.facts:
            click.echo(f"facts: {report.facts}")
        for title, problems in (
            ("error", report.errors),
            ("warning", report.warnings),
            ("note", report.notes),
        ):
            for p in problems:
                click.echo(f"{title}: {p.message}")
                if p.hint:
                    click.echo(f"  hint: {p.hint}")
        n_err, n_warn, n_note = len(report.errors), len(report.warnings), len(report.notes)
        notes = f", {n_note} note{'s' * (n_note != 1)}" if n_note else ""
        if report.ok and not n_warn:
            click.echo(f"ok: no problems found{notes}")
        else:
            click.echo(
                f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}{notes}"
            )
    if not report.ok:
        click.get_current_context().exit(1)


@click.group("contract")
def contract_group() -> None:
    """The sd-scripts argument facts that `validate` checks against.

    \b
    Examples:
      kohya-orch contract show
      kohya-orch contract refresh --sd-scripts ~/sd-scripts --python ~/sd-scripts/venv/bin/python
    """


@contract_group.command("show")
@json_option
@handle_errors
def contract_show(as_json: bool) -> None:
    """List the argument facts kohya-orch ships (every commit, every script) and the commits
    whose facts were read from a checkout, with the kohya_ss release that pins each.

    \b
    Examples:
      kohya-orch contract show
      kohya-orch contract show --json
    """
    from kohya_orchestrator.sdscripts.inventory import facts_inventory

    inventory = facts_inventory()
    if as_json:
        echo_json(inventory.to_dict())
        return
    for line in inventory.lines():
        click.echo(line)


@contract_group.command("refresh")
@click.option(
    "--sd-scripts",
    "sd_scripts",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="Your sd-scripts checkout (the folder with train_network.py).",
)
@click.option(
    "--python",
    "python",
    default=None,
    help="The Python of your sd-scripts environment (default: its venv, else this one). "
    "It needs torch, transformers and diffusers.",
)
@json_option
@verbose_option
@handle_errors
def contract_refresh(sd_scripts: Path, python: str | None, as_json: bool, verbose: bool) -> None:
    """Read the argument facts of your own sd-scripts checkout, and keep them for its commit.

    Runs the checkout's own parser (each training script's setup_parser) in its own Python
    and stores the facts under that commit; every command then uses them for a checkout at
    that commit. Commits kohya-orch ships facts for need no refresh (`contract show`).

    \b
    Examples:
      kohya-orch contract refresh --sd-scripts ~/sd-scripts
      kohya-orch contract refresh --sd-scripts ~/sd-scripts --python ~/sd-scripts/venv/bin/python
    """
    from kohya_orchestrator.sdscripts.checkout import locate_python
    from kohya_orchestrator.sdscripts.refresh import diff_with_newest, refresh_contract
    from kohya_orchestrator.sdscripts.versions import NEWEST

    py, _ = locate_python(python, sd_scripts)
    results = refresh_contract(sd_scripts, py)
    rows = [(r, *diff_with_newest(r.contract)) for r in results]
    if as_json:
        echo_json(
            [
                {
                    "script": r.script,
                    "path": str(r.path),
                    "sd_scripts_commit": r.contract.commit,
                    "options": len(r.contract.options),
                    "added_vs_newest_shipped": added,
                    "removed_vs_newest_shipped": removed,
                }
                for r, added, removed in rows
            ]
        )
        return
    for r, added, removed in rows:
        click.echo(f"{r.contract.describe()} -> {r.path}")
        click.echo(
            f"  vs shipped {NEWEST.label}: {len(added)} added"
            + (f" ({', '.join(added)})" if added else "")
            + f", {len(removed)} removed"
            + (f" ({', '.join(removed)})" if removed else "")
        )


COMMANDS: list[click.Command] = [validate_command, contract_group]
