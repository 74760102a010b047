"""CLI: `plan`, the exact numbers sd-scripts will use for a run (buckets, steps, files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kohya_orchestrator.cli.common import (
    echo_json,
    handle_errors,
    json_option,
    sd_scripts_option,
    set_option,
    verbose_option,
)
from kohya_orchestrator.sdscripts.contract import SCRIPTS
from kohya_orchestrator.units import human_size

if TYPE_CHECKING:
    from kohya_orchestrator.train.steps import StepCount


def render_plan(plan: StepCount) -> list[str]:
    """The human-readable plan, line by line."""
    from kohya_orchestrator.train.dataset_plan import DatasetStepCount

    if isinstance(plan, DatasetStepCount):
        lines = [f"dataset config {plan.dataset_config} ({plan.family}):"]
        for d in plan.datasets:
            lines.append(
                f"  dataset {d.index}: resolution {d.resolution[0]},{d.resolution[1]}, batch size "
                f"{d.batch_size}, buckets {'on' if d.enable_bucket else 'off'}, {d.batches} batches"
            )
        lines.append("subsets (dataset/folder):")
    else:
        lines = [f"folders ({plan.family}, resolution {plan.resolution[0]},{plan.resolution[1]}):"]
    for f in plan.folders:
        kind = "reg  " if f.is_reg else "train"
        if f.skipped:
            lines.append(f"  {kind} {f.name}: skipped by sd-scripts ({f.skipped})")
        else:
            lines.append(
                f"  {kind} {f.name}: {f.images} images x {f.repeats} repeats = {f.with_repeats}"
            )
    title = "buckets" if plan.enable_bucket else "buckets (off: one fixed size)"
    lines.append(f"{title}:  resolution   images  with repeats  batches")
    for b in plan.buckets:
        reso = f"{b.width}x{b.height}"
        lines.append(f"  {reso:>20} {b.images:>8} {b.with_repeats:>13} {b.batches:>8}")
    lines += [
        f"batch size {plan.batch_size}, gradient accumulation {plan.gradient_accumulation_steps},"
        f" processes {plan.num_processes}",
        f"batches per epoch: {plan.batches_per_epoch}",
        f"steps per epoch:   {plan.steps_per_epoch}",
        f"epochs:            {plan.epochs}",
        f"total steps:       {plan.total_steps}",
        f"warmup steps:      {plan.warmup_steps}",
        f"LoRA files ({len(plan.lora_stems)}): {', '.join(plan.lora_stems)}",
        f"one LoRA file:     about {human_size(plan.lora_file_bytes)}",
        f"disk needed:       about {human_size(plan.disk_bytes)}",
    ]
    if plan.state_folders:
        lines.append(
            f"state folders:     {plan.state_folders} kept at the end (for train --resume), "
            f"about {human_size(plan.state_bytes)} of the disk above"
        )
    if plan.duration is not None:
        lines.append(f"time:              {plan.duration['text']}")
    elif plan.output_name and plan.total_steps:
        lines.append("time:              unknown until a run is measured (train DEST --smoke)")
    lines += [f"note: {n}" for n in plan.notes]
    if plan.facts:
        lines.append(f"facts: {plan.facts}")
    return lines


@click.command("plan")
@click.argument("target", type=click.Path(path_type=Path, exists=True))
@click.option("--gpus", type=click.IntRange(min=1), default=1, help="Processes (GPUs) to plan for.")
@set_option("Override one project setting for this plan (only with a project folder).")
@click.option(
    "--script",
    type=click.Choice(SCRIPTS),
    default=None,
    help="For a TOML file: the script it is for (sets the LoRA size estimate; default: the "
    "one named in the file's header, else SDXL).",
)
@sd_scripts_option
@json_option
@verbose_option
@handle_errors
def plan_command(
    target: Path,
    gpus: int,
    overrides: tuple[str, ...],
    script: str | None,
    sd_scripts: Path | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Count the run before it starts: buckets, steps, warmup, LoRA files, disk.

    TARGET is a project folder (its settings are rendered into a config first), an
    sd-scripts training TOML, or a dataset config ([[datasets]], each with its own
    resolution and batch size; subsets with their own repeats). Image sizes come from file
    headers only. The numbers follow sd-scripts' own arithmetic (per-bucket batches,
    repeats, accumulation, processes).

    \b
    Examples:
      kohya-orch plan ~/lora/yumoto_hakone
      kohya-orch plan ~/lora/yumoto_hakone --set batch_size=2 --json
      kohya-orch plan config.toml --gpus 2
      kohya-orch plan dataset.toml
    """
    from kohya_orchestrator.train.dataset_plan import count_config_file
    from kohya_orchestrator.train.steps import count_project

    if target.is_dir():
        plan = count_project(target, overrides, num_processes=gpus, sd_scripts=sd_scripts)
    else:
        if overrides:
            raise click.BadParameter("--set works with a project folder only", param_hint="--set")
        plan = count_config_file(target, num_processes=gpus, script=script)
    if as_json:
        echo_json(plan.to_dict())
        return
    for line in render_plan(plan):
        click.echo(line)
    for w in plan.warnings:
        click.echo(f"warning: {w}", err=True)


COMMANDS: list[click.Command] = [plan_command]
