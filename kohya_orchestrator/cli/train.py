"""CLI commands `train` (launch sd-scripts through accelerate) and `doctor` (the preflight)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kohya_orchestrator.cli.common import (
    echo_json,
    handle_errors,
    json_option,
    set_option,
    verbose_option,
    warn,
)

if TYPE_CHECKING:
    from kohya_orchestrator.train.job import TrainOutcome
    from kohya_orchestrator.train.probe import Probe


@click.command("train")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="DEST... [-- SD_SCRIPTS_ARGS...]")
@click.option("--dry-run", is_flag=True, help="Print the command (and checks); run nothing.")
@click.option("--smoke", is_flag=True, help="Two steps at 64x64 on a scratch copy, to test.")
@click.option("--resume", is_flag=True, help="Continue from the newest *-state folder.")
@click.option("--force", is_flag=True, help="Train even if it overwrites an earlier run.")
@click.option("--gpus", type=click.IntRange(min=1), help="GPUs (processes) for accelerate.")
@click.option("--gpu-ids", help="Which GPUs, e.g. 0,1 (accelerate's --gpu_ids).")
@click.option(
    "--accelerate-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Use this `accelerate config` file instead of kohya-orch's flags.",
)
@click.option(
    "--sd-scripts",
    "sd_scripts",
    type=click.Path(file_okay=False, path_type=Path),
    help="The sd-scripts folder (else $KOHYA_SD_SCRIPTS, vendor/, ~/kohya_ss).",
)
@click.option("--python", "python", help="The Python of sd-scripts' environment.")
@click.option(
    "--stop-on-failure", is_flag=True, help="With several DESTs: stop at the first failed run."
)
@set_option("Override a setting for this run (repeatable).")
@verbose_option
@handle_errors
def train(
    args: tuple[str, ...],
    stop_on_failure: bool,
    dry_run: bool,
    smoke: bool,
    resume: bool,
    force: bool,
    gpus: int | None,
    gpu_ids: str | None,
    accelerate_config: Path | None,
    sd_scripts: Path | None,
    python: str | None,
    overrides: tuple[str, ...],
    verbose: bool,
) -> None:
    """Train the LoRA of project DEST with sd-scripts, launched through accelerate.

    Renders and validates DEST/config.toml, then checks everything it can before the
    run: sd-scripts, its Python (torch, torchvision, accelerate), the model, the dataset,
    the output folder and free disk. Then it runs
    `accelerate launch <script> --config_file DEST/config.toml`, showing the trainer's
    output live and saving it to DEST/log/train-<time>.log; a record of the run goes to
    DEST/runs/<time>.json. Ctrl-C stops the trainer (a second Ctrl-C at once). The exit
    code is the trainer's. Arguments after `--` go to the sd-scripts script. --dry-run
    prints the command, then any problem the checks found (exit 1 if there is one).

    Several DESTs make a queue: every project is checked first, then they train one after
    another; a failed run moves on to the next (--stop-on-failure stops), Ctrl-C stops
    the current run and asks whether to go on, and a table of every run ends it.

    \b
    Examples:
      kohya-orch train ~/lora/hakone --dry-run
      kohya-orch train ~/lora/hakone --smoke
      kohya-orch train ~/lora/hakone --set epochs=10
      kohya-orch train ~/lora/hakone --resume
      kohya-orch train ~/lora/hakone --gpus 2 -- --max_train_steps 100
      kohya-orch train ~/lora/hakone ~/lora/takeru ~/lora/misaki --stop-on-failure
    """
    from kohya_orchestrator.train.job import TrainRequest, run_train

    if smoke and resume:
        raise click.BadParameter("--smoke cannot be combined with --resume.", param_hint="--smoke")
    dests, extra = split_dests(args)
    request = TrainRequest(
        dest=dests[0],
        extra=extra,
        dry_run=dry_run,
        smoke=smoke,
        resume=resume,
        force=force,
        gpus=gpus,
        gpu_ids=gpu_ids,
        accelerate_config=accelerate_config,
        sd_scripts=sd_scripts,
        python=python,
        overrides=overrides,
    )
    if len(dests) > 1:
        from kohya_orchestrator.cli.queue import run_queue_command

        run_queue_command(
            request,
            dests,
            events=Events(),
            probe=_probe,
            stamp=_timestamp(),
            stop_on_failure=stop_on_failure,
        )
        return
    outcome = run_train(request, Events(), probe=_probe, stamp=_timestamp())
    if outcome.dry_run:
        for line in outcome.job.dry_run_lines():
            click.echo(line)
        # The command is shown either way; a run that could not start is still an error.
        outcome.job.report.require_ok()
        return
    _report(outcome)
    raise click.exceptions.Exit(outcome.exit_code)


def split_dests(args: tuple[str, ...]) -> tuple[list[Path], tuple[str, ...]]:
    """DEST... then the sd-scripts arguments: the first argument starting with `-` (Click
    has taken the `--` itself) begins those."""
    dests: list[Path] = []
    for i, arg in enumerate(args):
        if arg.startswith("-"):
            extra = tuple(args[i:])
            break
        dests.append(Path(arg))
    else:
        extra = ()
    if not dests:
        raise click.UsageError("Missing argument 'DEST...'.")
    for dest in dests:
        if dest.exists() and not dest.is_dir():
            raise click.BadParameter(f"{dest} is not a folder.", param_hint="'DEST'")
    return dests, extra


class Events:
    """How a run's events are shown: notes and warnings on stderr; the trainer's output as
    the bytes it wrote (tqdm's carriage-return progress and any encoding pass through), or
    on a terminal its lines with one status line (epoch, step / total, s/step, time left)
    in place of tqdm's bar."""

    def __init__(self, status: bool | None = None) -> None:
        from kohya_orchestrator.train.progress import ProgressReader

        self.status = sys.stdout.isatty() if status is None else status
        self.reader = ProgressReader()
        self.shown = False

    def note(self, text: str) -> None:
        click.echo(f"note: {text}", err=True)

    def warn(self, text: str) -> None:
        warn(text)

    def starting(self, shell_line: str) -> None:
        click.echo(f"$ {shell_line}", err=True)

    def output(self, chunk: bytes) -> None:
        stream = sys.stdout.buffer
        if not self.status:
            stream.write(chunk)
            stream.flush()
            return
        lines, changed = self.reader.feed(chunk.decode("utf-8", errors="replace"))
        clear = "\r\x1b[K" if self.shown else ""
        out = "".join(f"{clear if i == 0 else ''}{line}\n" for i, line in enumerate(lines))
        if lines:
            self.shown = False
        if changed or (lines and self.reader.progress.step is not None):
            out += ("\r\x1b[K" if self.shown else "") + self.reader.progress.line()
            self.shown = True
        stream.write(out.encode("utf-8"))
        stream.flush()


def _report(outcome: TrainOutcome) -> None:
    paths = f"log: {outcome.log}\nrun record: {outcome.record}"
    click.echo("")
    if outcome.exit_code == 0:
        click.echo(f"{outcome.label} finished in {outcome.seconds:.0f} s.")
        for line in outcome.summary:
            click.echo(f"  {line}")
        if outcome.loras and outcome.job.smoke is None:
            click.echo(f"LoRA files in {outcome.model_dir}: {', '.join(outcome.loras)}")
        click.echo(paths)
        return
    if outcome.interrupted:
        click.echo(f"stopped by Ctrl-C (exit code {outcome.exit_code}).", err=True)
        click.echo(paths, err=True)
        return
    click.echo(f"training failed with exit code {outcome.exit_code}. Last lines:", err=True)
    for line in outcome.tail:
        click.echo(f"  | {line}", err=True)
    if outcome.cause is not None:
        click.echo(f"cause: {outcome.cause}", err=True)
    click.echo(paths, err=True)


def _probe(python: str) -> Probe:
    from kohya_orchestrator.train.probe import run_probe

    click.echo(f"checking {python} (imports torch) ...", err=True)
    return run_probe(python)


def _timestamp() -> str:
    from kohya_orchestrator.train.runrecord import timestamp

    return timestamp()


@click.command("doctor")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--sd-scripts", "sd_scripts", type=click.Path(file_okay=False, path_type=Path))
@click.option("--python", "python", help="The Python of sd-scripts' environment.")
@set_option("Override a setting for this run (repeatable).")
@json_option
@verbose_option
@handle_errors
def doctor(
    dest: Path | None,
    sd_scripts: Path | None,
    python: str | None,
    overrides: tuple[str, ...],
    as_json: bool,
    verbose: bool,
) -> None:
    """Check that training can run here: platform, sd-scripts, Python, and project DEST.

    Without DEST it checks the machine (sd-scripts, the Python that runs it, torch,
    accelerate, the device); with DEST also the model, dataset, output folder and disk.
    Exits 1 when a check fails.

    \b
    Examples:
      kohya-orch doctor
      kohya-orch doctor ~/lora/hakone --sd-scripts ~/kohya_ss/sd-scripts
    """
    from kohya_orchestrator.train.doctor import check_setup

    checkup = check_setup(
        dest, sd_scripts=sd_scripts, python=python, overrides=overrides, probe=_probe
    )
    plat, report = checkup.platform, checkup.report
    gpu = ", ".join(report.probe.gpus) if report.probe and report.probe.gpus else None
    device = report.probe.device if report.probe else None
    if as_json:
        echo_json(
            {
                "platform": plat.describe(),
                "apple_silicon": plat.apple_silicon,
                "device": device,
                "gpus": report.probe.gpus if report.probe else [],
                "checks": [
                    {"name": c.name, "status": c.status, "detail": c.detail} for c in report.checks
                ],
            }
        )
    else:
        click.echo(f"platform: {plat.describe()}")
        click.echo(f"device:   {device or 'unknown'}{f' ({gpu})' if gpu else ''}")
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for check in report.checks:
            click.echo(f"[{marks[check.status]}] {check.name}: {check.detail}")
    if report.problems:
        raise click.exceptions.Exit(1)


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
    from kohya_orchestrator.cli.queue import run_queue_command

    run_queue_command(
        request,
        dests,
        events=Events(),
        probe=_probe,
        stamp=_timestamp(),
        stop_on_failure=stop_on_failure,
    )


COMMANDS: list[click.Command] = [train, queue_command, doctor]
