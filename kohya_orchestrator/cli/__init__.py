"""The `kohya-orch` command line: a Click group assembled from one module per command group.

Each module in `_COMMAND_MODULES` exposes `COMMANDS`, a list of Click commands. Core
modules never print or exit; the commands here parse, call one core function, print,
and map `OrchError` to a message and exit code (see `common.handle_errors`).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from kohya_orchestrator import __version__
from kohya_orchestrator.cli.common import OrchGroup

# The top-level help page, printed by `_entry` without importing Click.
HELP_CACHE = Path(__file__).with_name("help.txt")

# One module per command group; order is the order of `kohya-orch --help`.
_COMMAND_MODULES = (
    "rename",
    "caption",
    "tag",
    "tags",
    "prepare",
    "config",
    "validate",
    "plan",
    "settings",
    "gui_import",
    "templates",
    "train",
    "results",
    "tokenizers",
)


@click.group(cls=OrchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kohya-orch")
def cli() -> None:
    """From a folder of images to a grid of finished epochs, over kohya-ss/sd-scripts.

    \b
    Workflow:
      kohya-orch rename yumoto_hakone DIR     rename images to yumoto_hakone_<n>
      kohya-orch caption yumoto_hakone DIR    trigger-first captions, .txt and embedded
      kohya-orch tag DIR [TRIGGER]            auto-tag with sd-scripts' WD14 tagger
      kohya-orch tags DIR add|remove|...      bulk tag edits; captions DIR --stats
      kohya-orch prepare ...                  the kohya folder layout and settings
      kohya-orch config / validate / plan     render, lint and count the training run
      kohya-orch settings [NAME]              every setting and its kohya_ss GUI name
      kohya-orch import PRESET.json           a kohya_ss GUI preset as settings
      kohya-orch train DEST [DEST...]         launch sd-scripts through accelerate
      kohya-orch queue FILE                   train the projects of FILE in a row
      kohya-orch results / xyz / grid DEST    compare the epochs

    Add --verbose to any command for a traceback on errors.
    """


for _name in _COMMAND_MODULES:
    _module = importlib.import_module(f"kohya_orchestrator.cli.{_name}")
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Entry point of `kohya-orch` once past the cached `--help` (see `_entry`)."""
    cli(prog_name="kohya-orch")


def render_help() -> str:
    """The top-level help page as Click prints it on a terminal of 80 columns or more."""
    # Click wraps at min(columns, 80) - 2: 78 on any terminal of 80 columns or more.
    settings = {**cli.context_settings, "terminal_width": 78}
    with click.Context(cli, info_name="kohya-orch", **settings) as ctx:
        return ctx.get_help() + "\n"


def _alias_main(command_name: str, prog_name: str) -> None:
    command = cli.commands.get(command_name)
    if command is None:  # pragma: no cover - only while a command is being built
        click.echo(f"{prog_name}: the '{command_name}' command is not available.", err=True)
        sys.exit(1)
    command(prog_name=prog_name)


def rename_all_main() -> None:
    """Entry point of `rename_all` (= `kohya-orch rename`)."""
    _alias_main("rename", "rename_all")


def caption_all_main() -> None:
    """Entry point of `caption_all` (= `kohya-orch caption`)."""
    _alias_main("caption", "caption_all")
