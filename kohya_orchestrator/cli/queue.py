"""The queue's side of the CLI (`train DEST1 DEST2 ...`, `queue FILE`): run it, the table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from collections.abc import Callable

    from kohya_orchestrator.train.job import TrainEvents, TrainRequest
    from kohya_orchestrator.train.probe import Probe
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


def run_queue_command(
    request: TrainRequest,
    dests: list[Path],
    *,
    events: TrainEvents,
    probe: Callable[[str], Probe],
    stamp: str,
    stop_on_failure: bool,
) -> None:
    """Run the queue and print its table; exit 0 when every run finished."""
    from kohya_orchestrator.train.queue import queue_requests, run_queue

    result = run_queue(
        queue_requests(request, dests),
        events,
        probe=probe,
        stamp=stamp,
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
