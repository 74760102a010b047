"""`kohya-orch config DEST`: render config.toml from the settings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kohya_orchestrator.cli.common import (
    handle_errors,
    python_option,
    sd_scripts_option,
    set_option,
    templates_dir_option,
    verbose_option,
    warn,
)

F = TypeVar("F", bound=Callable[..., Any])


@click.command("config")
@click.argument("dest", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the rendered config; write nothing.")
@set_option()
@templates_dir_option
@sd_scripts_option
@python_option
@verbose_option
@handle_errors
def config_command(
    dest: Path,
    dry_run: bool,
    overrides: tuple[str, ...],
    templates_dir: Path | None,
    sd_scripts: Path | None,
    python: str | None,
    verbose: bool,
) -> None:
    """Render DEST/config.toml for sd-scripts from DEST/kohya-orch.toml.

    The base model's keys choose the template (SDXL or SD 1.x/2.x); the result is parsed
    back with both TOML parsers and validated before it is written. With sampling on
    (sample_every_n_epochs > 0) DEST/sample_prompts.txt is written too. Notes explain
    derived values; warnings go to stderr; errors stop it with nothing written.

    \b
    Examples:
      kohya-orch config ~/lora/yumoto_hakone
      kohya-orch config ~/lora/yumoto_hakone --dry-run --set epochs=10
      kohya-orch config ~/lora/yumoto_hakone --set sample_every_n_epochs=1
    """
    from kohya_orchestrator.layout import Layout
    from kohya_orchestrator.project.render import build_config, refuse_errors, write_config

    layout = Layout.at(dest)
    with contextlib.ExitStack() as stack:
        if not dry_run:
            from kohya_orchestrator.locking import folder_lock

            # Rendered under the lock too: what is written is what the settings say now.
            stack.enter_context(folder_lock(layout.dest, "config"))
        rendered = build_config(
            layout, overrides, templates_dir, sd_scripts=sd_scripts, python=python
        )
        click.echo(f"note: checked against {rendered.report.facts}", err=True)
        for note in rendered.notes:
            click.echo(f"note: {note}", err=True)
        for problem in rendered.report.warnings:
            warn(problem.render())
        if dry_run:
            click.echo(rendered.text, nl=False)
            refuse_errors(rendered)
            return
        path = write_config(rendered, layout)
    template = rendered.template
    click.echo(
        f"Wrote {path} ({rendered.model.label}: {rendered.script}; "
        f"template {template.name} from {template.layer})."
    )
    if rendered.sample_prompts is not None:
        click.echo(f"Wrote {layout.sample_prompts_file}.")


COMMANDS: list[click.Command] = [config_command]
