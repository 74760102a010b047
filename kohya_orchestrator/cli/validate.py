"""CLI: `validate` (lint an sd-scripts training TOML) and the `contract` group (refresh, show)."""

from __future__ import annotations

from pathlib import Path

import click

from kohya_orchestrator.cli.common import echo_json, handle_errors, json_option, verbose_option
from kohya_orchestrator.sdscripts.contract import SCRIPTS

SCRIPT_CHOICE = click.Choice(SCRIPTS)
PROFILE_CHOICE = click.Choice(["apple-silicon", "cuda", "cpu"])


@click.command("validate")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--script",
    type=SCRIPT_CHOICE,
    default=None,
    help="The training script the file is for (default: the one named in the file's "
    "header, else sdxl_train_network.py).",
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
    help="Argument facts JSON to check against (default: refreshed, else shipped).",
)
@json_option
@verbose_option
@handle_errors
def validate_command(
    file: Path,
    script: str | None,
    profile: str | None,
    contract_file: Path | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Lint an sd-scripts training TOML: every problem at once, errors and warnings apart.

    FILE is a training TOML, or a project folder (its config.toml). Flattens the tables as
    sd-scripts does, then reports unknown keys (with did-you-mean and
    the kohya_ss GUI's names), wrong types, values outside the choices, and the rules that
    make sd-scripts crash or silently train something else. Exit 1 when there is an error,
    0 with warnings only.

    \b
    Examples:
      kohya-orch validate project/config.toml
      kohya-orch validate ~/lora/yumoto_hakone
      kohya-orch validate gui_config.toml --script train_network.py --json
      kohya-orch validate config.toml --profile apple-silicon
    """
    from kohya_orchestrator.lint.linter import lint_file

    if file.is_dir():
        file = file / "config.toml"
    report = lint_file(file, script, profile=profile, facts=contract_file)
    if as_json:
        echo_json(report.to_dict())
    else:
        shown = f", profile {report.profile}" if report.profile else ""
        click.echo(f"{file}: checked against {report.contract}{shown}")
        for title, problems in (("error", report.errors), ("warning", report.warnings)):
            for p in problems:
                click.echo(f"{title}: {p.message}")
                if p.hint:
                    click.echo(f"  hint: {p.hint}")
        n_err, n_warn = len(report.errors), len(report.warnings)
        if report.ok and not n_warn:
            click.echo("ok: no problems found")
        else:
            click.echo(f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}")
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
    """Show which argument facts are in use for each training script, and where they come from.

    \b
    Examples:
      kohya-orch contract show
      kohya-orch contract show --json
    """
    from kohya_orchestrator.sdscripts.contract import contracts_in_use, user_contract_dir

    contracts = contracts_in_use()
    if as_json:
        echo_json(
            {
                "refreshed_dir": str(user_contract_dir()),
                "contracts": [
                    {
                        "script": c.script,
                        "sd_scripts_commit": c.commit,
                        "options": len(c.options),
                        "source": c.source,
                    }
                    for c in contracts
                ],
            }
        )
        return
    for c in contracts:
        click.echo(c.describe())
    click.echo(f"refreshed facts are stored in {user_contract_dir()}")


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
    help="The Python of your sd-scripts environment (default: this one). "
    "It needs torch, transformers and diffusers.",
)
@json_option
@verbose_option
@handle_errors
def contract_refresh(sd_scripts: Path, python: str | None, as_json: bool, verbose: bool) -> None:
    """Regenerate the argument facts from your own sd-scripts checkout.

    Runs the checkout's own parser (train_network.setup_parser, and the SDXL script's) in its
    own Python, and stores the facts; `validate` then uses them instead of the shipped ones.

    \b
    Examples:
      kohya-orch contract refresh --sd-scripts ~/sd-scripts
      kohya-orch contract refresh --sd-scripts ~/sd-scripts --python ~/sd-scripts/venv/bin/python
    """
    from kohya_orchestrator.sdscripts.contract import (
        PINNED_COMMIT,
        diff_with_shipped,
        refresh_contract,
    )

    results = refresh_contract(sd_scripts, python)
    rows = []
    for r in results:
        added, removed = diff_with_shipped(r.contract)
        rows.append((r, added, removed))
    if as_json:
        echo_json(
            [
                {
                    "script": r.script,
                    "path": str(r.path),
                    "sd_scripts_commit": r.contract.commit,
                    "options": len(r.contract.options),
                    "added_vs_shipped": added,
                    "removed_vs_shipped": removed,
                }
                for r, added, removed in rows
            ]
        )
        return
    for r, added, removed in rows:
        click.echo(f"{r.contract.describe()} -> {r.path}")
        click.echo(
            f"  vs shipped {PINNED_COMMIT[:8]}: {len(added)} added"
            + (f" ({', '.join(added)})" if added else "")
            + f", {len(removed)} removed"
            + (f" ({', '.join(removed)})" if removed else "")
        )


COMMANDS: list[click.Command] = [validate_command, contract_group]
