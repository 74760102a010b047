"""CLI commands `train` (launch sd-scripts through accelerate) and `doctor` (the preflight)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kohya_orchestrator.cli.common import (
    echo_json,
    handle_errors,
    json_option,
    verbose_option,
    warn,
)

TAIL_LINES = 25


def _stdout_writer() -> Callable[[bytes], None]:
    # Bytes as the trainer wrote them: tqdm's \r progress and any encoding pass through.
    stream = sys.stdout.buffer

    def write(chunk: bytes) -> None:
        stream.write(chunk)
        stream.flush()

    return write


@click.command("train")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- SD_SCRIPTS_ARGS...]")
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
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting.")
@verbose_option
@handle_errors
def train(
    dest: Path,
    extra: tuple[str, ...],
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

    \b
    Examples:
      kohya-orch train ~/lora/hakone --dry-run
      kohya-orch train ~/lora/hakone --smoke
      kohya-orch train ~/lora/hakone --set epochs=10
      kohya-orch train ~/lora/hakone --resume
      kohya-orch train ~/lora/hakone --gpus 2 -- --max_train_steps 100
    """
    from kohya_orchestrator.layout import Layout
    from kohya_orchestrator.project.render import build_config, refuse_errors, write_config
    from kohya_orchestrator.sdscripts.contract import flatten_like_sd_scripts
    from kohya_orchestrator.train.launch import (
        build_launch,
        default_cpu_threads,
        newest_state,
        resolve_processes,
    )
    from kohya_orchestrator.train.platform_info import detect_platform
    from kohya_orchestrator.train.preflight import run_preflight

    if smoke and resume:
        raise click.BadParameter("--smoke cannot be combined with --resume.", param_hint="--smoke")
    # Before the config and the slow probe: a bad --gpus/--gpu-ids is reported at once.
    processes = resolve_processes(gpus, gpu_ids, accelerate_config)
    dest = dest.expanduser().absolute()
    layout = Layout(dest)
    rendered = build_config(dest, overrides)
    refuse_errors(rendered, "nothing was run")
    for note in rendered.notes:
        click.echo(f"note: {note}", err=True)
    for problem in getattr(rendered.report, "warnings", []):
        warn(problem.render())
    values = flatten_like_sd_scripts(rendered.values)
    report = run_preflight(
        dest,
        values,
        rendered.script,
        sd_scripts=sd_scripts,
        python=python,
        force=force or smoke,
        resume=resume,
        gpus=processes,
        probe=None if dry_run else _probe,
    )
    for check in report.checks:
        # With --accelerate-config the user chose accelerate's settings; no need to warn.
        if check.status == "warn" and not (accelerate_config and check.name == "accelerate config"):
            warn(check.detail)
    if not dry_run:
        report.require_ok()

    sd_folder = report.sd_scripts or sd_scripts or Path("vendor/sd-scripts").absolute()
    stamp = _timestamp()
    config_file = layout.config_file
    config_text = rendered.text
    smoke_plan = None
    log_dir = layout.log_dir
    if smoke:
        from kohya_orchestrator.train.smoke import plan_smoke

        smoke_plan = plan_smoke(dest, rendered.values)
        config_file = smoke_plan.config_file
        log_dir = smoke_plan.folder / "log"
    state = None
    if resume:
        state = newest_state(Path(str(values.get("output_dir") or layout.model_dir)))
    spec = build_launch(
        python=report.python or python or "python",
        sd_scripts=sd_folder,
        script=rendered.script,
        config_file=config_file,
        log_path=log_dir / f"train-{stamp}.log",
        mixed_precision=str(values.get("mixed_precision") or "no"),
        num_cpu_threads=default_cpu_threads(os.cpu_count(), processes),
        gpus=gpus,
        gpu_ids=gpu_ids,
        accelerate_config=accelerate_config,
        resume=state,
        extra_args=extra,
        apple_silicon=detect_platform().apple_silicon,
    )
    for note in spec.notes:
        click.echo(f"note: {note}", err=True)
    if dry_run:
        click.echo(f"# working folder: {spec.cwd}")
        click.echo(f"# config: {config_file} (not written: --dry-run)")
        if spec.accelerate_config_path is not None:
            click.echo(
                f"# accelerate config: {spec.accelerate_config_path} (not written: --dry-run)"
            )
        click.echo(spec.shell_line())
        # The command is shown either way; a run that could not start is still an error.
        report.require_ok()
        return

    if smoke_plan is not None:
        import toml

        from kohya_orchestrator.train.smoke import apply_smoke

        apply_smoke(smoke_plan)
        config_text = toml.dumps(smoke_plan.config)
    else:
        write_config(rendered, dest)
    code = _run(dest, spec, rendered, values, report, config_text, stamp, smoke_plan)
    raise click.exceptions.Exit(code)


def _probe(python: str) -> Any:
    from kohya_orchestrator.train.probe import run_probe

    click.echo(f"checking {python} (imports torch) ...", err=True)
    return run_probe(python)


def _timestamp() -> str:
    from kohya_orchestrator.train.runrecord import timestamp

    return timestamp()


def _run(
    dest: Path,
    spec: Any,
    rendered: Any,
    values: dict[str, Any],
    report: Any,
    config_text: str,
    stamp: str,
    smoke_plan: Any,
) -> int:
    from kohya_orchestrator.layout import Layout
    from kohya_orchestrator.train.diagnose import diagnose_log
    from kohya_orchestrator.train.runner import run_launch
    from kohya_orchestrator.train.runrecord import (
        RunRecord,
        dataset_manifest,
        produced_loras,
        snapshot_loras,
    )

    layout = Layout(dest)
    model_dir = smoke_plan.model_dir if smoke_plan else Path(str(values["output_dir"]))
    data_dir = Path(str(values.get("train_data_dir") or layout.img_dir))
    record = RunRecord(
        path=layout.runs_dir / (f"{stamp}-smoke.json" if smoke_plan else f"{stamp}.json"),
        kind="smoke" if smoke_plan else "train",
        argv=spec.argv,
        env=spec.env,
        cwd=str(spec.cwd),
        log=str(spec.log_path),
        config_text=config_text,
        settings=rendered.settings.values(),
        probe=report.probe.as_dict() if report.probe else None,
        sd_scripts_commit=report.commit,
        dataset=dataset_manifest(data_dir, str(values.get("caption_extension") or ".caption")),
        started=time.time(),
    )
    record.write()
    before = snapshot_loras(model_dir)
    click.echo(f"$ {spec.shell_line()}", err=True)
    result = run_launch(spec, on_output=_stdout_writer())
    loras = produced_loras(model_dir, before)
    extra: dict[str, Any] = {"peak_rss_bytes": result.peak_rss_bytes}
    if result.interrupts:
        extra["interrupted"] = result.interrupts
    summary_lines: list[str] = []
    if smoke_plan is not None:
        from kohya_orchestrator.train.smoke import summarize_smoke

        summary = summarize_smoke(result.tail, result.peak_rss_bytes, model_dir)
        extra["seconds_per_step"] = summary.seconds_per_step
        summary_lines = summary.lines()
    record.finish(exit_code=result.exit_code, ended=result.ended, loras=loras, **extra)
    click.echo("")
    if result.returncode == 0:
        label = "smoke run" if smoke_plan else "training"
        click.echo(f"{label} finished in {result.ended - result.started:.0f} s.")
        for line in summary_lines:
            click.echo(f"  {line}")
        if loras and not smoke_plan:
            click.echo(f"LoRA files in {model_dir}: {', '.join(loras)}")
        click.echo(f"log: {result.log_path}\nrun record: {record.path}")
        return 0
    if result.interrupts:
        click.echo(f"stopped by Ctrl-C (exit code {result.exit_code}).", err=True)
        click.echo(f"log: {result.log_path}\nrun record: {record.path}", err=True)
        return result.exit_code
    click.echo(f"training failed with exit code {result.exit_code}. Last lines:", err=True)
    for line in result.tail_lines(TAIL_LINES):
        click.echo(f"  | {line}", err=True)
    found = diagnose_log(result.log_path)
    if found is not None:
        click.echo(f"cause: {found.line()}", err=True)
    click.echo(f"log: {result.log_path}\nrun record: {record.path}", err=True)
    return result.exit_code


@click.command("doctor")
@click.argument("dest", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--sd-scripts", "sd_scripts", type=click.Path(file_okay=False, path_type=Path))
@click.option("--python", "python", help="The Python of sd-scripts' environment.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting.")
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
    from kohya_orchestrator.errors import OrchError
    from kohya_orchestrator.sdscripts.contract import flatten_like_sd_scripts
    from kohya_orchestrator.sdscripts.trainers import default_script
    from kohya_orchestrator.train.platform_info import detect_platform
    from kohya_orchestrator.train.preflight import (
        PreflightReport,
        check_environment,
        run_preflight,
    )

    plat = detect_platform()
    config_problem = None
    report: PreflightReport
    if dest is None:
        report = check_environment(
            default_script(), sd_scripts=sd_scripts, python=python, probe=_probe
        )
    else:
        from kohya_orchestrator.project.render import build_config

        try:
            rendered = build_config(dest.expanduser().absolute(), overrides)
        except OrchError as exc:
            config_problem = exc.render()
            report = check_environment(
                default_script(), sd_scripts=sd_scripts, python=python, probe=_probe
            )
        else:
            values = flatten_like_sd_scripts(rendered.values)
            report = run_preflight(
                dest, values, rendered.script, sd_scripts=sd_scripts, python=python, probe=_probe
            )
            for problem in getattr(rendered.report, "errors", []):
                report.add("config", "fail", problem.render())
    if config_problem is not None:
        report.add("config", "fail", config_problem)
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


COMMANDS: list[click.Command] = [train, doctor]
