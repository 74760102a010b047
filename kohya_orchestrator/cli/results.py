"""`results`, `xyz`, `inspect`, `grid`, `export`: compare a run's epochs and use them in Forge."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kohya_orchestrator.cli.common import echo_json, handle_errors, json_option, verbose_option
from kohya_orchestrator.errors import InputError
from kohya_orchestrator.units import human_size

if TYPE_CHECKING:
    from kohya_orchestrator.results.model import Results
    from kohya_orchestrator.results.xyz import XyzPlan

_dest_argument = click.argument(
    "dest", type=click.Path(path_type=Path, file_okay=False, exists=True)
)
_every_option = click.option(
    "--every",
    type=click.IntRange(min=1),
    help="Only epochs divisible by K (the final file is always kept).",
    metavar="K",
)
_last_option = click.option(
    "--last",
    type=click.IntRange(min=1),
    help="Only the last N files (the final one included).",
    metavar="N",
)
_weight_option = click.option(
    "--weight",
    type=float,
    default=1.0,
    show_default=True,
    help="LoRA weight in the <lora:...> tag.",
)


def _local_time(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def _echo_table(results: Results) -> None:
    model_dir = results.dest / "model"
    if not results.files:
        click.echo(f"No LoRA files in {model_dir} yet.")
        return
    click.echo(f"{results.name}: {len(results.files)} LoRA file(s) in {model_dir}")
    click.echo(f"  {'epoch':>5}  {'steps':>6}  {'loss':>8}  {'size':>10}  {'written':<16}  file")
    for f in results.files:
        epoch = "?" if f.shown_epoch is None else str(f.shown_epoch)
        steps = "?" if f.steps is None else str(f.steps)
        value = results.loss.get(f.shown_epoch or 0)
        loss = "-" if value is None else f"{value:.4f}"
        click.echo(
            f"  {epoch:>5}  {steps:>6}  {loss:>8}  {human_size(f.size):>10}  "
            f"{_local_time(f.mtime):<16}  {f.path.name}"
        )


def _echo_findings(results: Results) -> None:
    click.echo("")
    warnings = [f for f in results.findings if f.level == "warning"]
    if not warnings and results.files:
        what = "the settings" if results.settings is not None else "each other"
        click.echo(f"Checks: no problems found (files agree with {what}).")
    else:
        click.echo("Checks:")
    for finding in results.findings:
        click.echo(f"  {finding.level}: {finding.message}")


def _echo_xyz(plan: XyzPlan) -> None:
    where = {
        "files": "from the files that exist",
        "settings": "planned from the settings (no files yet)",
        "planned": "the files such a run writes",
    }[plan.source]
    click.echo(f'Forge X/Y/Z plot, X type "Prompt S/R" ({where}):')
    click.echo(f"  values:   {plan.sr_value}")
    click.echo(f"  LoRA tag: {plan.lora_tag}")
    click.echo(f"  reminder: {plan.reminder}")
    for warning in plan.warnings:
        click.echo(f"  warning:  {warning}")
    for hint in plan.hints:
        click.echo(f"  hint:     {hint}")


@click.command("results")
@_dest_argument
@click.option("--plot", is_flag=True, help="Also draw the loss curve into DEST/compare/loss.png.")
@verbose_option
@json_option
@handle_errors
def results_command(dest: Path, plot: bool, verbose: bool, as_json: bool) -> None:
    """Table of a run's LoRA files, checks against the settings, and the Forge S/R list.

    Reads only the safetensors headers in DEST/model/: each file's epoch, steps (ss_steps),
    size and time written, in the order sd-scripts saved them (the final, unnumbered file
    last), with the loss of each epoch from the TensorBoard logs in DEST/log. Then lists
    what does not match the settings of the run that wrote each file (its run record in
    DEST/runs/, else kohya-orch.toml: rank, alpha, epochs, learning rates, base model,
    output name) or looks wrong (missing epochs, files without
    metadata, a resumed run's step count, files of another name), and prints the values
    to paste into Forge's X/Y/Z plot.

    \b
    Examples:
      kohya-orch results runs/yumoto_hakone
      kohya-orch results runs/yumoto_hakone --json
      kohya-orch results runs/yumoto_hakone --plot
    """
    from kohya_orchestrator.errors import ResultsError
    from kohya_orchestrator.results.scan import scan_results
    from kohya_orchestrator.results.xyz import xyz_from_results

    results = scan_results(dest)
    drawn = None
    if plot:
        from kohya_orchestrator.locking import folder_lock
        from kohya_orchestrator.results.plot import write_loss_plot

        with folder_lock(dest, "results --plot"):
            drawn = write_loss_plot(results)
    try:
        plan: XyzPlan | None = xyz_from_results(results)
    except ResultsError:
        plan = None  # nothing to compare yet, and no settings to plan from
    if as_json:
        doc = results.to_dict()
        doc["xyz"] = plan.to_dict() if plan else None
        doc["plot"] = str(drawn) if drawn is not None else None
        echo_json(doc)
        return
    _echo_table(results)
    _echo_findings(results)
    if plan is not None:
        click.echo("")
        _echo_xyz(plan)
    if drawn is not None:
        click.echo(f"\nLoss curve: {drawn}")


@click.command("xyz")
@click.argument("target")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Plan for a run of N epochs: TARGET is then the LoRA's output name.",
    metavar="N",
)
@click.option(
    "--save-every",
    type=click.IntRange(min=1),
    help="With --epochs: the run's save_every_n_epochs (default 1).",
    metavar="K",
)
@_every_option
@_last_option
@_weight_option
@click.option(
    "--trigger",
    help="The trigger word, checked against the S/R value (default: the settings' trigger).",
)
@verbose_option
@json_option
@handle_errors
def xyz_command(
    target: str,
    epochs: int | None,
    save_every: int | None,
    every: int | None,
    last: int | None,
    weight: float,
    trigger: str | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """The Prompt S/R values and LoRA tag to compare every epoch in Forge's X/Y/Z plot.

    TARGET is a project folder (DEST): the list comes from the LoRA files in DEST/model/,
    or from its settings before training. With --epochs, TARGET is the output name and
    the list is the one such a run will write: sd-scripts saves NAME-000001 ... and the
    last epoch as NAME, without a number.

    Put the LoRA tag in the prompt exactly as printed: Prompt S/R replaces the first value
    everywhere it appears in the prompt.

    \b
    Examples:
      kohya-orch xyz yumoto_hakone --epochs 15
      kohya-orch xyz yumoto_hakone --epochs 15 --save-every 5
      kohya-orch xyz runs/yumoto_hakone --every 2 --weight 0.8
      kohya-orch xyz runs/yumoto_hakone --last 5
    """
    from kohya_orchestrator.results.xyz import build_xyz, planned_entries, xyz_for_dest

    if save_every is not None and epochs is None:
        # A project folder's files (or settings) already say how often the run saves.
        raise click.BadParameter(
            "--save-every only applies with --epochs; for a project folder use --every",
            param_hint="--save-every",
        )
    if epochs is not None:
        try:
            entries = planned_entries(target, epochs, save_every or 1)
        except InputError as exc:
            raise click.BadParameter(exc.render(), param_hint="TARGET") from exc
        plan = build_xyz(
            target,
            entries,
            source="planned",
            every=every,
            last=last,
            weight=weight,
            trigger=trigger,
        )
    else:
        dest = Path(target)
        if not dest.is_dir():
            raise click.BadParameter(
                f"{target!r} is not a folder. Give a project folder, or a LoRA name with "
                f"--epochs: kohya-orch xyz {target} --epochs 15",
                param_hint="TARGET",
            )
        plan = xyz_for_dest(dest, every=every, last=last, weight=weight, trigger=trigger)
    if as_json:
        echo_json(plan.to_dict())
        return
    _echo_xyz(plan)


@click.command("inspect")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--tags",
    "top_tags",
    type=click.IntRange(min=0),
    default=15,
    show_default=True,
    help="How many of the most frequent caption tags to show.",
    metavar="N",
)
@verbose_option
@json_option
@handle_errors
def inspect_command(file: Path, top_tags: int, verbose: bool, as_json: bool) -> None:
    """What a .safetensors file is: a LoRA's training metadata, or a checkpoint's family.

    For a LoRA: network, dim/alpha, epoch and steps, learning rates, optimizer,
    scheduler, base model and hash, resolution, dataset folders with repeats and image
    counts, and the most frequent caption tags. For a checkpoint: its family (SDXL,
    SD 1.x, SD 2.x, ...) from its tensor names. Only the header is read, so a
    multi-gigabyte checkpoint takes no longer than a small LoRA.

    \b
    Examples:
      kohya-orch inspect runs/yumoto_hakone/model/yumoto_hakone.safetensors
      kohya-orch inspect ponyDiffusionV6XL_v6StartWithThisOne.safetensors
      kohya-orch inspect yumoto_hakone-000005.safetensors --json
    """
    from kohya_orchestrator.results.inspect import inspect_file

    info = inspect_file(file, top_tags=top_tags)
    if as_json:
        echo_json(info.to_dict())
        return
    click.echo(
        f"{file.name}: {info.label} ({human_size(info.file_size)}, {info.tensor_count} tensors)"
    )
    width = max((len(label) for label, _ in info.rows), default=0)
    for label, value in info.rows:
        click.echo(f"  {label + ':':<{width + 1}} {value}")
    if info.dataset_dirs:
        click.echo("  dataset folders:")
        for d in info.dataset_dirs:
            repeats = "?" if d.repeats is None else d.repeats
            images = "?" if d.images is None else d.images
            click.echo(f"    {d.name}: {images} images x {repeats} repeats")
    if info.top_tags:
        click.echo("  most frequent tags:")
        click.echo("    " + ", ".join(f"{tag} ({n})" for tag, n in info.top_tags))


@click.command("grid")
@_dest_argument
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the PNG (default: DEST/compare/grid.png).",
)
@click.option("--force", is_flag=True, help="Replace an existing --out file.")
@verbose_option
@handle_errors
def grid_command(dest: Path, out: Path | None, force: bool, verbose: bool) -> None:
    """An epoch x prompt contact sheet of the sample images sd-scripts made while training.

    One column per epoch, one row per prompt (labelled with the prompt's first words from
    DEST/sample_prompts.txt), each sample scaled to at most 256 px wide. A missing sample
    is a grey crossed-out cell. Needs sampling turned on in the settings before training.

    \b
    Examples:
      kohya-orch grid runs/yumoto_hakone
      kohya-orch grid runs/yumoto_hakone --out ~/Desktop/yumoto_hakone.png
    """
    from kohya_orchestrator.results.grid import write_grid

    path, plan, notes = write_grid(dest, out, force=force)
    missing = len(plan.missing)
    click.echo(
        f"Wrote {path}: {len(plan.columns)} epoch(s) x {len(plan.rows)} prompt(s), "
        f"{plan.width}x{plan.height} px" + (f", {missing} missing cell(s)" if missing else "")
    )
    for note in notes:
        click.echo(f"  note: {note}")


@click.command("export")
@_dest_argument
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(path_type=Path),
    help="Forge's LoRA folder, e.g. stable-diffusion-webui-forge/models/Lora.",
)
@click.option("--link", is_flag=True, help="Symlink instead of copying.")
@click.option("--force", is_flag=True, help="Replace different files of the same name.")
@click.option("-n", "--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@verbose_option
@handle_errors
def export_command(
    dest: Path, to: Path, link: bool, force: bool, dry_run: bool, verbose: bool
) -> None:
    """Copy (or link) a run's LoRA files into Forge's models/Lora folder.

    Copies are written atomically; a file that is already there and identical is skipped;
    a different file of the same name stops the export (nothing is copied) unless --force.

    \b
    Examples:
      kohya-orch export runs/yumoto_hakone --to ~/forge/models/Lora --dry-run
      kohya-orch export runs/yumoto_hakone --to ~/forge/models/Lora
      kohya-orch export runs/yumoto_hakone --to ~/forge/models/Lora --link
    """
    from kohya_orchestrator.results.export import run_export
    from kohya_orchestrator.results.scan import scan_results

    results = scan_results(dest)
    sources = [f.path for f in results.files]
    plan, actions = run_export(sources, to, link=link, force=force, dry_run=dry_run)
    prefix = "would " if dry_run else ""
    verbs = {"copy": "copy", "link": "link", "replace": "replace", "skip": "skip"}
    past = {"copy": "copied", "link": "linked", "replace": "replaced", "skip": "skipped"}
    for a in actions:
        if a.action == "conflict":
            click.echo(f"  conflict: {a.target.name} ({a.reason})")
            continue
        verb = verbs[a.action] if dry_run else past[a.action]
        reason = f" ({a.reason})" if a.reason else ""
        click.echo(f"  {prefix}{verb}: {a.target.name}{reason}")
    counts = {k: sum(1 for a in actions if a.action == k) for k in (*past, "conflict")}
    words = {k: f"to {v}" for k, v in verbs.items()} if dry_run else dict(past)
    words["conflict"] = "in conflict (--force replaces them)"
    summary = ", ".join(f"{n} {words[k]}" for k, n in counts.items() if n)
    click.echo(f"{'Dry run: ' if dry_run else ''}{summary} in {plan.to}")


COMMANDS: list[click.Command] = [
    results_command,
    xyz_command,
    inspect_command,
    grid_command,
    export_command,
]
