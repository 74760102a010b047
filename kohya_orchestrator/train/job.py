"""The train use case: render the config, check everything, launch, record the run.

`run_train(request, events)` is the one core function `kohya-orch train` calls. It never
prints: what the user should see goes through `events` (notes, warnings, the trainer's own
output), and the outcome comes back as a `TrainOutcome` for the CLI to show. The project's
Layout is built once here and passed down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kohya_orchestrator.layout import Layout
from kohya_orchestrator.project.render import RenderedConfig, build_config, refuse_errors
from kohya_orchestrator.train.launch import LaunchSpec
from kohya_orchestrator.train.preflight import PreflightReport
from kohya_orchestrator.train.probe import Probe
from kohya_orchestrator.train.smoke import SmokePlan

TAIL_LINES = 25


class TrainEvents(Protocol):
    """What a run tells the user while it goes (the CLI prints these)."""

    def note(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def starting(self, shell_line: str) -> None: ...

    def output(self, chunk: bytes) -> None: ...


@dataclass(frozen=True)
class TrainRequest:
    """What `kohya-orch train` was asked for."""

    dest: Path
    extra: tuple[str, ...] = ()
    dry_run: bool = False
    smoke: bool = False
    resume: bool = False
    force: bool = False
    gpus: int | None = None
    gpu_ids: str | None = None
    accelerate_config: Path | None = None
    sd_scripts: Path | None = None
    python: str | None = None
    overrides: tuple[str, ...] = ()


@dataclass
class TrainJob:
    """Everything decided before anything runs: the config, the checks, the command."""

    layout: Layout
    rendered: RenderedConfig
    report: PreflightReport
    spec: LaunchSpec
    config_file: Path
    stamp: str
    smoke: SmokePlan | None = None

    @property
    def values(self) -> dict[str, Any]:
        return self.rendered.flat

    def dry_run_lines(self) -> list[str]:
        """What --dry-run prints: the working folder, the files it would write, the command."""
        lines = [
            f"# working folder: {self.spec.cwd}",
            f"# config: {self.config_file} (not written: --dry-run)",
        ]
        if self.spec.accelerate_config_path is not None:
            lines.append(
                f"# accelerate config: {self.spec.accelerate_config_path} (not written: --dry-run)"
            )
        return [*lines, self.spec.shell_line()]


@dataclass
class TrainOutcome:
    """How a run ended (or what --dry-run showed)."""

    job: TrainJob
    exit_code: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    interrupted: bool = False
    log: Path | None = None
    record: Path | None = None
    loras: list[str] = field(default_factory=list)
    model_dir: Path | None = None
    summary: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    cause: str | None = None

    @property
    def label(self) -> str:
        return "smoke run" if self.job.smoke is not None else "training"


def plan_train(
    request: TrainRequest,
    events: TrainEvents,
    *,
    probe: Callable[[str], Probe] | None,
    stamp: str,
    layout: Layout | None = None,
) -> TrainJob:
    """Render, check and build the command (writes nothing). `probe=None` skips the probe."""
    from kohya_orchestrator.train.launch import (
        build_launch,
        default_cpu_threads,
        newest_state,
        resolve_processes,
    )
    from kohya_orchestrator.train.platform_info import detect_platform
    from kohya_orchestrator.train.preflight import run_preflight

    # Before the config and the slow probe: a bad --gpus/--gpu-ids is reported at once.
    processes = resolve_processes(request.gpus, request.gpu_ids, request.accelerate_config)
    layout = layout or Layout.at(request.dest)
    rendered = build_config(
        layout,
        request.overrides,
        sd_scripts=request.sd_scripts,
        python=request.python,
        read_parser=not request.dry_run,
    )
    refuse_errors(rendered, "nothing was run")
    if rendered.report.facts:
        events.note(f"checked against {rendered.report.facts}")
    for note in rendered.notes:
        events.note(note)
    for problem in rendered.report.warnings:
        events.warn(problem.render())
    values = rendered.flat
    report = run_preflight(
        values,
        rendered.script,
        sd_scripts=request.sd_scripts,
        python=request.python,
        force=request.force or request.smoke,
        resume=request.resume,
        gpus=processes,
        probe=None if request.dry_run else probe,
    )
    for check in report.checks:
        # With --accelerate-config the user chose accelerate's settings; no need to warn.
        if check.status == "warn" and not (
            request.accelerate_config and check.name == "accelerate config"
        ):
            events.warn(check.detail)
    if not request.dry_run:
        report.require_ok()

    config_file = layout.config_file
    log_dir = layout.log_dir
    smoke = None
    if request.smoke:
        from kohya_orchestrator.train.smoke import plan_smoke

        smoke = plan_smoke(layout, values)
        config_file = smoke.config_file
        log_dir = smoke.layout.log_dir
    state = None
    if request.resume:
        state = newest_state(Path(str(values.get("output_dir") or layout.model_dir)))
    spec = build_launch(
        python=report.python or request.python or "python",
        sd_scripts=report.sd_scripts or _not_found(request.sd_scripts),
        script=rendered.script,
        config_file=config_file,
        log_path=log_dir / f"train-{stamp}.log",
        mixed_precision=str(values.get("mixed_precision") or "no"),
        num_cpu_threads=default_cpu_threads(os.cpu_count(), processes),
        gpus=request.gpus,
        gpu_ids=request.gpu_ids,
        accelerate_config=request.accelerate_config,
        resume=state,
        extra_args=request.extra,
        apple_silicon=detect_platform().apple_silicon,
    )
    for note in spec.notes:
        events.note(note)
    return TrainJob(layout, rendered, report, spec, config_file, stamp, smoke)


def run_train(
    request: TrainRequest,
    events: TrainEvents,
    *,
    probe: Callable[[str], Probe] | None,
    stamp: str,
) -> TrainOutcome:
    """The whole `train` command: plan, then (unless --dry-run) write, launch and record.

    A real run holds DEST's lock from the config it writes to the record it finishes (a
    second `train`, `config`, `prepare` or `grid` there is refused meanwhile), and its log
    and record get names no earlier run took (`stamp`, else `stamp-2`, ...)."""
    layout = Layout.at(request.dest)
    if request.dry_run or not layout.dest.is_dir():
        # A missing DEST is reported by the plan (no settings file).
        job = plan_train(request, events, probe=probe, stamp=stamp, layout=layout)
        if request.dry_run:
            # The command is shown either way; a run that could not start is still an error.
            return TrainOutcome(job, dry_run=True)
    from kohya_orchestrator.locking import folder_lock
    from kohya_orchestrator.train.runrecord import free_stamp

    with folder_lock(layout.dest, "train"):
        stamp = free_stamp(layout, stamp)
        job = plan_train(request, events, probe=probe, stamp=stamp, layout=layout)
        return execute_job(job, events)


def execute_job(job: TrainJob, events: TrainEvents) -> TrainOutcome:
    """Write the config (or the smoke project), launch, record: a planned job, run. The
    caller holds DEST's lock (run_train, the queue)."""
    if job.smoke is not None:
        from kohya_orchestrator.train.smoke import apply_smoke

        apply_smoke(job.smoke)
        config_text = job.smoke.config_text()
    else:
        from kohya_orchestrator.project.render import write_config

        write_config(job.rendered, job.layout)
        config_text = job.rendered.text
    return _launch(job, config_text, events)


def _launch(job: TrainJob, config_text: str, events: TrainEvents) -> TrainOutcome:
    from kohya_orchestrator.train.diagnose import diagnose_log
    from kohya_orchestrator.train.runner import run_launch
    from kohya_orchestrator.train.runrecord import (
        RunRecord,
        dataset_manifest,
        produced_loras,
        snapshot_loras,
    )

    layout, values, spec, smoke = job.layout, job.values, job.spec, job.smoke
    model_dir = smoke.layout.model_dir if smoke else Path(str(values["output_dir"]))
    data_dir = Path(str(values.get("train_data_dir") or layout.img_dir))
    caption_ext = str(values.get("caption_extension") or ".caption")
    reg_dir = values.get("reg_data_dir")
    reg = {"reg_dataset": dataset_manifest(Path(str(reg_dir)), caption_ext)} if reg_dir else {}
    record = RunRecord(
        path=layout.runs_dir / (f"{job.stamp}-smoke.json" if smoke else f"{job.stamp}.json"),
        kind="smoke" if smoke else "train",
        argv=spec.argv,
        env=spec.env,
        cwd=str(spec.cwd),
        log=str(spec.log_path),
        config_text=config_text,
        settings=job.rendered.settings.values(),
        probe=job.report.probe.as_dict() if job.report.probe else None,
        sd_scripts_commit=job.report.commit,
        dataset=dataset_manifest(data_dir, caption_ext),
        started=time.time(),
        extra=reg,
    )
    record.write()
    before = snapshot_loras(model_dir)
    events.starting(spec.shell_line())
    result = run_launch(spec, on_output=events.output)
    loras = produced_loras(model_dir, before)
    extra: dict[str, Any] = {"peak_rss_bytes": result.peak_rss_bytes}
    if result.interrupts:
        extra["interrupted"] = result.interrupts
    summary: list[str] = []
    from kohya_orchestrator.train.smoke import seconds_per_step, summarize_smoke

    # Every run records the last rate tqdm printed: `plan` estimates the next run from it.
    extra["seconds_per_step"] = seconds_per_step(result.tail)
    if smoke is not None:
        found = summarize_smoke(result.tail, result.peak_rss_bytes, model_dir)
        summary = found.lines()
    record.finish(exit_code=result.exit_code, ended=result.ended, loras=loras, **extra)
    if smoke is not None and result.returncode == 0:
        summary.append(_full_run_line(job))
    outcome = TrainOutcome(
        job,
        exit_code=result.exit_code if result.returncode != 0 else 0,
        seconds=result.ended - result.started,
        interrupted=bool(result.interrupts),
        log=result.log_path,
        record=record.path,
        loras=loras,
        model_dir=model_dir,
        summary=summary,
    )
    if result.returncode != 0 and not result.interrupts:
        outcome.tail = result.tail_lines(TAIL_LINES)
        diagnosis = diagnose_log(result.log_path)
        outcome.cause = diagnosis.line() if diagnosis is not None else None
    return outcome


def _full_run_line(job: TrainJob) -> str:
    """`full run: about 1h05m (...)`: the project's steps at the rate measured here."""
    from kohya_orchestrator.errors import OrchError
    from kohya_orchestrator.train.estimate import estimate_duration
    from kohya_orchestrator.train.steps import count_steps

    try:
        total = count_steps(job.values, script=job.rendered.script).total_steps
    except OrchError:
        return "full run: unknown (the steps cannot be counted; see `kohya-orch plan`)"
    found = estimate_duration(job.layout, total, job.values)
    return f"full run ({total} steps): {found['text'] if found else 'unknown'}"


def _not_found(given: Path | None) -> Path:
    """The folder shown in a command that cannot run: the one given, else a placeholder
    that says so (never a path relative to the current folder)."""
    return given.expanduser().absolute() if given is not None else Path("<sd-scripts not found>")
