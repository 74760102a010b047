"""`kohya-orch settings`: the glossary of every setting, its values and its kohya_ss GUI name."""

from __future__ import annotations

import click

from kohya_orchestrator.cli.common import echo_json, handle_errors, json_option, verbose_option


@click.command("settings")
@click.argument("name", required=False)
@json_option
@verbose_option
@handle_errors
def settings_command(name: str | None, as_json: bool, verbose: bool) -> None:
    """Every setting: kind, default, the value under each profile, its kohya_ss GUI field.

    The GUI-to-CLI glossary. Set a setting in DEST/kohya-orch.toml, or for one run with
    --set KEY=VALUE. NAME shows only what a name means: a setting, another name of one, a
    kohya_ss GUI field or an sd-scripts key (instance_prompt, sdpa, max_train_epochs).

    \b
    Examples:
      kohya-orch settings
      kohya-orch settings instance_prompt
      kohya-orch settings sdpa --json
    """
    from kohya_orchestrator.config.glossary import glossary, section_title

    entries = glossary(name)
    if as_json:
        echo_json([e.to_dict() for e in entries])
        return
    if name is None:
        click.echo(
            "Settings of kohya-orch.toml (or --set KEY=VALUE for one run). GUI: the kohya_ss "
            "GUI's field;\nsd-scripts: the key it becomes in config.toml; profiles: "
            "apple-silicon (default), cuda, cpu."
        )
    section = ""
    for e in entries:
        if e.section != section and name is None:
            section = e.section
            click.echo(f"\n{section_title(section)}")
        click.echo(f"  {e.key}: {e.kind}; {e.default_text()}")
        names = [f"GUI {e.gui}" if e.gui else "no GUI field"]
        names.append(
            f"sd-scripts {' / '.join(e.sd_scripts)}" if e.sd_scripts else "no sd-scripts key"
        )
        if e.aliases:
            names.append(f"also written {', '.join(e.aliases)}")
        click.echo(f"      {'; '.join(names)}")
        click.echo(f"      {e.advice}")


COMMANDS: list[click.Command] = [settings_command]
