"""`kohya-orch templates ls / cp`: see the shipped templates and copy one out to edit."""

from __future__ import annotations

from pathlib import Path

import click

from kohya_orchestrator.cli.common import (
    OrchGroup,
    echo_json,
    handle_errors,
    json_option,
    templates_dir_option,
)


@click.group("templates", cls=OrchGroup)
def templates_group() -> None:
    """List the config templates and copy one out to edit.

    Search order: --templates-dir, $KOHYA_ORCH_TEMPLATES, DEST/templates/, the packaged
    templates. The first folder holding a template's name wins.

    \b
    Examples:
      kohya-orch templates ls
      kohya-orch templates cp sdxl_lora.toml.j2 ~/lora/yumoto_hakone
    """


@templates_group.command("ls", short_help="List the templates and the layer each comes from.")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@templates_dir_option
@json_option
@handle_errors
def ls_command(dest: Path | None, templates_dir: Path | None, as_json: bool) -> None:
    """List every template with the layer it comes from (a project's DEST adds its own).

    A template hidden by one of the same name in a higher layer is marked "(hidden)".

    \b
    Examples:
      kohya-orch templates ls
      kohya-orch templates ls ~/lora/yumoto_hakone --json
    """
    from kohya_orchestrator.config.templates import list_templates

    found = list_templates(dest, templates_dir)
    if as_json:
        echo_json(
            [
                {"name": t.name, "layer": t.layer, "path": str(t.path), "active": t.active}
                for t in found
            ]
        )
        return
    width = max((len(t.name) for t in found), default=4)
    layer_width = max((len(t.layer) for t in found), default=5)
    click.echo(f"{'NAME':<{width}}  {'LAYER':<{layer_width}}  PATH")
    for t in found:
        hidden = "" if t.active else "  (hidden)"
        click.echo(f"{t.name:<{width}}  {t.layer:<{layer_width}}  {t.path}{hidden}")


@templates_group.command("cp", short_help="Copy a template out to edit.")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing file of the same name.")
@templates_dir_option
@handle_errors
def cp_command(name: str, dest: Path, force: bool, templates_dir: Path | None) -> None:
    """Copy template NAME out to edit: into DEST/templates/ for a project folder
    (then `kohya-orch config DEST` uses it), into DEST if it is another folder, else to
    the file DEST. An existing file is never overwritten without --force.

    \b
    Examples:
      kohya-orch templates cp sdxl_lora.toml.j2 ~/lora/yumoto_hakone
      kohya-orch templates cp sample_prompts.txt.j2 ~/lora/yumoto_hakone --force
    """
    from kohya_orchestrator.config.templates import copy_template

    target = copy_template(name, dest, force=force, templates_dir=templates_dir)
    click.echo(f"Copied {name} to {target}")


COMMANDS: list[click.Command] = [templates_group]
