"""Shared CLI plumbing: error mapping, the shared options (--verbose, --json, --set,
--templates-dir), counted nouns, progress bars."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from kohya_orchestrator.errors import OrchError

F = TypeVar("F", bound=Callable[..., Any])

# Progress bars appear only for at least this many items, and only on a terminal.
PROGRESS_MIN_ITEMS = 200


class OrchGroup(click.Group):
    """A group that lists commands in the order they were added, not alphabetically, and
    says which setting an unknown option that names one (a kohya_ss GUI field) means."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.NoSuchOption as exc:
            command = exc.ctx.command if exc.ctx is not None else None
            hint = setting_option_hint(exc.option_name, command) if command else None
            if hint is None:
                raise
            raise click.NoSuchOption(
                exc.option_name, f"No such option: {exc.option_name}. {hint}", ctx=exc.ctx
            ) from None


def setting_option_hint(option: str, command: click.Command) -> str | None:
    """`--instance-prompt` -> which of our settings the name means, and the option for it."""
    from kohya_orchestrator.config.schema import ALIASES, SPEC_BY_KEY

    name = option.lstrip("-").replace("-", "_")
    setting = ALIASES.get(name) or (name if name in SPEC_BY_KEY else None)
    if setting is None:
        return None
    params = {p.name: p for p in command.params if isinstance(p, click.Option)}
    if setting in params:
        use = params[setting].opts[0]
    elif "overrides" in params:
        use = f"--set {setting}=..."
    else:
        use = f"`{setting}` in kohya-orch.toml"
    spec = SPEC_BY_KEY[setting]
    what = f"The kohya_ss GUI's {name!r}" if name == spec.gui else f"{name!r}"
    return f"{what} is kohya-orch's setting {setting!r}: use {use} (kohya-orch settings {name})."


def verbose_option(func: F) -> F:
    """`--verbose/-v`: more output, and a traceback when a command fails."""
    return click.option(
        "-v", "--verbose", is_flag=True, help="Show more detail, and tracebacks on errors."
    )(func)


def json_option(func: F) -> F:
    """`--json`: machine-readable output on stdout instead of the human table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def _check_overrides(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    from kohya_orchestrator.config.parse import split_override

    for item in value:
        if split_override(item) is None:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. --set epochs=10).")
    return value


SET_HELP = (
    "Override a setting for this run (repeatable), e.g. --set epochs=10 "
    "--set learning_rate=0,0001 --set sd_scripts.max_grad_norm=1.0."
)


def set_option(help: str = SET_HELP) -> Callable[[F], F]:
    """`--set KEY=VALUE` (repeatable) -> `overrides`: the one --set of every command."""

    def decorate(func: F) -> F:
        return click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            callback=_check_overrides,
            help=help,
        )(func)

    return decorate


def templates_dir_option(func: F) -> F:
    """`--templates-dir DIR`: search this folder before all other template layers."""
    return click.option(
        "--templates-dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder searched first for templates (then $KOHYA_ORCH_TEMPLATES, "
        "DEST/templates/, the packaged ones).",
    )(func)


def sd_scripts_option(func: F) -> F:
    """`--sd-scripts DIR`: the sd-scripts checkout to use (and whose facts to check against)."""
    return click.option(
        "--sd-scripts",
        "sd_scripts",
        type=click.Path(file_okay=False, path_type=Path),
        help="The sd-scripts checkout (else $KOHYA_SD_SCRIPTS, vendor/, ~/kohya_ss); its "
        "commit chooses the argument facts.",
    )(func)


def python_option(func: F) -> F:
    """`--python PY`: the Python of sd-scripts' environment."""
    return click.option(
        "--python", "python", help="The Python of sd-scripts' environment (default: its venv)."
    )(func)


def count(n: int, noun: str) -> str:
    """`3 images`, `1 image`: a number with its noun."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def handle_errors(func: F) -> F:
    """Turn OrchError (and any OSError) into `Error: ...` on stderr with exit 1 (traceback
    with --verbose)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OrchError as exc:
            if kwargs.get("verbose"):
                traceback.print_exc(file=sys.stderr)
            raise click.ClickException(exc.render()) from exc
        except BrokenPipeError as exc:
            if exc.filename is not None:
                raise click.ClickException(os_error_text(exc)) from exc
            closed_pipe_exit()
        except OSError as exc:
            # Last resort: commands turn the OSErrors they expect into OrchErrors that say
            # what was left done; any other one still gets a message, not a traceback.
            if kwargs.get("verbose"):
                traceback.print_exc(file=sys.stderr)
            raise click.ClickException(os_error_text(exc)) from exc

    return wrapper  # type: ignore[return-value]


def closed_pipe_exit() -> NoReturn:
    """The reader closed stdout (`kohya-orch validate ... | head`): stop quietly, as `cat`
    does, with the exit status of a process killed by SIGPIPE (128 + 13)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(141)


def os_error_text(exc: OSError) -> str:
    """An unexpected OSError as a message: the file, the OS's words, and what to do."""
    reason = exc.strerror or str(exc)
    names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
    where = f"{' -> '.join(names)}: " if names else ""
    return (
        f"{where}{reason}\n  hint: the command stopped there. Free some space or fix the "
        "permissions, then run it again (--verbose shows the traceback)."
    )


def echo_json(data: Any) -> None:
    """Print `data` as indented JSON (paths and other objects become strings)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def warn(message: str) -> None:
    """A warning line on stderr."""
    click.echo(f"warning: {message}", err=True)


def warn_left_alone(folder: Path, command: str) -> None:
    """rename and caption: the files in formats sd-scripts does not read, and why."""
    from kohya_orchestrator.dataset.scan import left_alone

    names = left_alone(folder)
    if names:
        warn(
            f"{command} left {count(len(names), 'file')} alone: {', '.join(names)}: sd-scripts "
            "does not read HEIC, HEIF, AVIF, GIF or TIFF; `kohya-orch prepare` converts them "
            "into PNG copies"
        )


@contextmanager
def progress(
    items: Iterable[Any], *, length: int, label: str, quiet: bool = False
) -> Iterator[Iterable[Any]]:
    """A progress bar on stderr for large jobs on a terminal; the plain iterable otherwise."""
    if quiet or length < PROGRESS_MIN_ITEMS or not sys.stderr.isatty():
        yield items
        return
    with click.progressbar(items, length=length, label=label, file=sys.stderr) as bar:
        yield bar
