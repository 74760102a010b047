"""`kohya-orch queue FILE` (and `train DEST1 DEST2 ...`): train several projects in a row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kohya_orchestrator.cli.common import handle_errors, set_option, verbose_option

if TYPE_CHECKING:
    from kohya_orchestrator.train.job import TrainRequest
    from kohya_orchestrator.train.queue import QueueResult


def summary_lines(result: QueueResult) -> list[str]:
    """The table that ends a queue: each run's exit, time and LoRA files."""
    from kohya_orchestrator.train.queue import DONE

    done = sum(1 for r in result.runs if r.state == DONE)
    lines = [f"queue: {len(result.runs)} run(s), {done} finished"]
    width = max(len(str(r.dest)) for r in result.runs)
    lines.append(
        f"  {'#':>2}  {'DEST':<{width}}  {'result':<9} {'exit':<10} {'time':>8}  LoRA files"
    )
    for n, run in enumerate(result.runs, 1):
        outcome = run.outcome
        seconds = f"{outcome.seconds:.0f} s" if outcome is not None else "-"
        loras = ", ".join(outcome.loras) if outcome is not None and outcome.loras else "-"
        lines.append(
            f"  {n:>2}  {run.dest!s:<{width}}  {run.state:<9} {run.exit_text:<10} "
            f"{seconds:>8}  {loras}"
        )
    lines.append("each run's log and record: DEST/log/train-<time>.log, DEST/runs/<time>.json")
    return lines


def _go_on(dest: Path) -> bool:
    try:
        return click.confirm(f"\nstopped by Ctrl-C. Go on with the next run ({dest})?", err=True)
    except click.Abort:  # no terminal to ask (stdin closed): stop
        return False


def run_queue_command(request: TrainRequest, dests: list[Path], *, stop_on_failure: bool) -> None:
    """Run the queue and print its table; exit 0 when every run finished."""
    from kohya_orchestrator.cli import train as train_cli
    from kohya_orchestrator.train.queue import queue_requests, run_queue

    result = run_queue(
        queue_requests(request, dests),
        train_cli.Events(),
        probe=train_cli._probe,
        stamp=train_cli._timestamp(),
        go_on=_go_on,
        stop_on_failure=stop_on_failure,
    )
    if result.dry_run:
        for run in result.runs:
            assert run.job is not None
            click.echo(f"# {run.dest}")
            for line in run.job.dry_run_lines():
                click.echo(line)
        for run in result.runs:
            assert run.job is not None
            run.job.report.require_ok()
        return
    click.echo("")
    for line in summary_lines(result):
        click.echo(line)
    raise click.exceptions.Exit(result.exit_code)


@click.command("queue")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stop-on-failure", is_flag=True, help="Stop at the first failed run.")
@click.option("--dry-run", is_flag=True, help="Check every project and print the commands.")
@click.option("--smoke", is_flag=True, help="A smoke run of each project instead.")
@click.option("--resume", is_flag=True, help="Continue each from its newest *-state folder.")
@click.option("--force", is_flag=True, help="Train even if it overwrites an earlier run.")
@click.option(
    "--sd-scripts",
    "sd_scripts",
    type=click.Path(file_okay=False, path_type=Path),
    help="The sd-scripts folder (else $KOHYA_SD_SCRIPTS, vendor/, ~/kohya_ss).",
)
@click.option("--python", "python", help="The Python of sd-scripts' environment.")
@set_option("Override a setting for every run (repeatable).")
@verbose_option
@handle_errors
def queue_command(
    file: Path,
    stop_on_failure: bool,
    dry_run: bool,
    smoke: bool,
    resume: bool,
    force: bool,
    sd_scripts: Path | None,
    python: str | None,
    overrides: tuple[str, ...],
    verbose: bool,
) -> None:
    """Train the projects listed in FILE (one DEST per line), one after another.

    The same as `kohya-orch train DEST1 DEST2 ...`: every project's preflight runs first,
    so all problems are known before the first hour; then each trains with its own log
    and run record. A failed run moves on to the next (--stop-on-failure stops); Ctrl-C
    stops the current run and asks whether to go on. A table of every run's exit, time
    and LoRA files ends it. Lines starting with # are comments; relative paths are taken
    from FILE's folder.

    \b
    Examples:
      kohya-orch queue tonight.txt
      kohya-orch queue tonight.txt --dry-run
    """
    from kohya_orchestrator.train.job import TrainRequest
    from kohya_orchestrator.train.queue import read_queue_file

    if smoke and resume:
        raise click.BadParameter("--smoke cannot be combined with --resume.", param_hint="--smoke")
    dests = read_queue_file(file)
    request = TrainRequest(
        dest=dests[0],
        dry_run=dry_run,
        smoke=smoke,
        resume=resume,
        force=force,
        sd_scripts=sd_scripts,
        python=python,
        overrides=overrides,
    )
    run_queue_command(request, dests, stop_on_failure=stop_on_failure)


COMMANDS: list[click.Command] = [queue_command]
