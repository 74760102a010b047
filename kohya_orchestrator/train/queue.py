"""A training queue: several projects trained one after another, through the night.

`run_queue` checks every project first (the whole preflight of each: config, sd-scripts,
Python, model, dataset, output, disk), so every problem is known before the first hour;
a problem in any stops the queue before anything runs. Then it trains them in order. A
failed run moves on to the next (unless `stop_on_failure`); a run stopped with Ctrl-C asks
(`go_on`) whether to go on. Each run keeps its own log and run record; the result lists
every run's exit, time and LoRA files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kohya_orchestrator.errors import InputError, OrchError, PreflightError
from kohya_orchestrator.train.job import TrainEvents, TrainJob, TrainOutcome, TrainRequest
from kohya_orchestrator.train.probe import Probe

DONE, FAILED, STOPPED, NOT_RUN = "finished", "failed", "stopped", "not run"


@dataclass
class QueuedRun:
    """One project of the queue and how its run went."""

    dest: Path
    job: TrainJob | None = None
    outcome: TrainOutcome | None = None
    state: str = NOT_RUN

    @property
    def exit_text(self) -> str:
        if self.outcome is None:
            return "-"
        if self.state == STOPPED:
            return f"{self.outcome.exit_code} (Ctrl-C)"
        return str(self.outcome.exit_code)


@dataclass
class QueueResult:
    """Every run of the queue, in order."""

    runs: list[QueuedRun] = field(default_factory=list)
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        """0 when every run finished; 130 when the queue was stopped; else 1."""
        if all(r.state == DONE for r in self.runs):
            return 0
        if any(r.state == STOPPED for r in self.runs):
            return 130
        return 1


def read_queue_file(path: Path) -> list[Path]:
    """The projects of a queue file: one DEST per line; blank lines and `#` comments skipped,
    relative paths taken from the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read the queue file {path}: {exc}") from None
    dests = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            dest = Path(entry).expanduser()
            dests.append(dest if dest.is_absolute() else path.parent / dest)
    if not dests:
        raise InputError(f"{path} lists no project folder.", "Write one DEST per line.")
    return dests


def _cached(probe: Callable[[str], Probe] | None) -> Callable[[str], Probe] | None:
    """The probe, run once per Python (the queue's projects usually share one)."""
    if probe is None:
        return None
    seen: dict[str, Probe] = {}

    def cached(python: str) -> Probe:
        if python not in seen:
            seen[python] = probe(python)
        return seen[python]

    return cached


def plan_queue(
    requests: Sequence[TrainRequest],
    events: TrainEvents,
    *,
    probe: Callable[[str], Probe] | None,
    stamp: str,
) -> list[QueuedRun]:
    """Plan and check every run (nothing written); PreflightError listing every problem of
    every project when any has one."""
    from kohya_orchestrator.layout import Layout
    from kohya_orchestrator.train.job import plan_train
    from kohya_orchestrator.train.runrecord import free_stamp

    seen: set[str] = set()
    for request in requests:
        real = os.path.realpath(request.dest)
        if real in seen:
            raise InputError(f"{request.dest} is in the queue twice.", "List each DEST once.")
        seen.add(real)
    check = _cached(probe)
    runs: list[QueuedRun] = []
    problems: list[str] = []
    for n, request in enumerate(requests, 1):
        run = QueuedRun(Path(request.dest))
        events.note(f"queue: checking {n}/{len(requests)}, {request.dest}")
        try:
            layout = Layout.at(request.dest)
            free = free_stamp(layout, stamp) if layout.dest.is_dir() else stamp
            run.job = plan_train(request, events, probe=check, stamp=free, layout=layout)
            if not request.dry_run:
                run.job.report.require_ok()
        except OrchError as exc:
            details = getattr(exc, "problems", None) or []
            lines = [exc.message, *(f"  {p}" for p in details)]
            problems.append(f"{request.dest}: " + "\n    ".join(lines))
        runs.append(run)
    if problems:
        raise PreflightError(
            f"the queue cannot start: {len(problems)} of {len(runs)} project(s) have problems; "
            "nothing was run.",
            problems,
            "Fix them (or take those projects out of the queue) and start it again.",
        )
    return runs


def run_queue(
    requests: Sequence[TrainRequest],
    events: TrainEvents,
    *,
    probe: Callable[[str], Probe] | None,
    stamp: str,
    go_on: Callable[[Path], bool],
    stop_on_failure: bool = False,
) -> QueueResult:
    """Check every project, then train them one after another (see the module docstring).
    `go_on(next_dest)` is asked after a Ctrl-C; a Ctrl-C between runs stops the queue."""
    from kohya_orchestrator.locking import folder_lock
    from kohya_orchestrator.train.job import execute_job

    runs = plan_queue(requests, events, probe=probe, stamp=stamp)
    result = QueueResult(runs, dry_run=any(r.dry_run for r in requests))
    if result.dry_run:
        return result
    for i, run in enumerate(runs):
        assert run.job is not None
        events.note(f"queue: training {i + 1}/{len(runs)}, {run.dest}")
        try:
            with folder_lock(run.job.layout.dest, "train (queue)"):
                run.outcome = execute_job(run.job, events)
        except KeyboardInterrupt:
            break  # between two runs or before the trainer started: the queue stops
        except OrchError as exc:
            events.warn(f"{run.dest}: {exc.render()}")
            run.state = FAILED
        else:
            outcome = run.outcome
            if outcome.interrupted:
                run.state = STOPPED
            else:
                run.state = DONE if outcome.exit_code == 0 else FAILED
        following = runs[i + 1 :]
        if not following:
            break
        if run.state == STOPPED:
            try:
                if not go_on(following[0].dest):
                    break
            except KeyboardInterrupt:
                break
        elif run.state == FAILED and stop_on_failure:
            break
    return result


def queue_requests(base: TrainRequest, dests: Sequence[Path]) -> list[TrainRequest]:
    """One request per project, the options of `base` for each."""
    return [replace(base, dest=dest) for dest in dests]
