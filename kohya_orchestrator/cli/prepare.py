"""`kohya-orch prepare`: the kohya folder layout and settings of a training project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from kohya_orchestrator.project.prepare import PreparePlan


@click.command("prepare")
@click.argument("name")
@click.option(
    "--images",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder of training images (and their .txt captions).",
)
@click.option(
    "--dest",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The training project folder to create or sync.",
)
@click.option(
    "--model",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The base checkpoint (.safetensors); its family is checked now.",
)
@click.option("--repeats", default=7, show_default=True, type=click.IntRange(min=1))
@click.option("--trigger", help="The trigger captions start with (default: NAME).")
@click.option(
    "--reg",
    type=click.Path(path_type=Path, file_okay=False),
    help="A folder of regularisation images (needs --class-prompt).",
)
@click.option("--reg-repeats", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--class-prompt", help='The class, e.g. "1boy, man, male focus, male, solo".')
@click.option(
    "--symlink", "mode", flag_value="symlink", default=True, help="Link with symlinks (default)."
)
@click.option("--hardlink", "mode", flag_value="hardlink", help="Link with hard links.")
@click.option("--copy", "mode", flag_value="copy", help="Copy the files instead of linking.")
@set_option("A setting for the new kohya-orch.toml (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print what would change and change nothing.")
@verbose_option
@json_option
@handle_errors
def prepare_command(
    name: str,
    images: Path,
    dest: Path,
    model: Path,
    repeats: int,
    trigger: str | None,
    reg: Path | None,
    reg_repeats: int,
    class_prompt: str | None,
    mode: str,
    overrides: tuple[str, ...],
    dry_run: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Lay out DEST for kohya training: img/<repeats>_<NAME>, model/, log/, settings.

    Fills DEST/img/<repeats>_<NAME>/ with links to the images of --images and their
    captions (symlinks; --hardlink or --copy where links are not wanted), creates
    model/ and log/, and reg/<n>_<class>/ only with --reg. Running it again syncs:
    new images are added, vanished ones removed (only files prepare made), and you
    are told what changed. The source folders are never modified. The first run
    writes DEST/kohya-orch.toml with the workflow's settings; after that the file is
    yours and never overwritten. The model's family is checked from its header now,
    not two hours into training. Images without a caption, captions that do not start
    with the trigger and stems shared by two images are reported.

    \b
    Examples:
      kohya-orch prepare yumoto_hakone --images ~/datasets/yumoto_hakone \\
          --dest ~/training/yumoto_hakone --model ~/models/ponyDiffusionV6XL.safetensors
      kohya-orch prepare yumoto_hakone --images imgs --dest train --model sdxl.safetensors \\
          --repeats 10 --copy --set epochs=10 --dry-run
      kohya-orch prepare yumoto_hakone --images imgs --dest train --model sdxl.safetensors \\
          --reg reg_imgs --reg-repeats 1 --class-prompt "1boy, man"
    """
    from kohya_orchestrator.project.apply import apply_prepare, left_untouched_error
    from kohya_orchestrator.project.prepare import PrepareRequest, plan_prepare

    if reg is not None and not class_prompt:
        raise click.BadParameter("--reg needs --class-prompt.", param_hint="'--class-prompt'")
    request = PrepareRequest(
        name=name,
        images=images,
        dest=dest,
        model=model,
        repeats=repeats,
        trigger=trigger or name,
        reg=reg,
        reg_repeats=reg_repeats,
        class_prompt=class_prompt,
        mode=mode,
        overrides=overrides,
    )
    plan = plan_prepare(request)
    settings_note: list[str] = []
    settings_written: bool | None = None
    if not dry_run:
        settings = apply_prepare(plan)
        settings_written = settings.written
        settings_note = settings.notes
    if as_json:
        echo_json(_as_json(plan, dry_run, settings_written, settings_note))
    else:
        _report(plan, dry_run=dry_run, verbose=verbose, written=settings_written)
        for note in plan.warnings + settings_note[1:]:
            warn(note)
    if plan.skipped:
        raise left_untouched_error(plan)


def _report(plan: PreparePlan, *, dry_run: bool, verbose: bool, written: bool | None) -> None:
    concept = plan.dirs[0]
    click.echo(f"Model: {plan.request.model} ({plan.model_label})")
    verb = "Would prepare" if dry_run else "Prepared"
    reg = f", {plan.dirs[3]}/ ({plan.reg_images} images)" if len(plan.dirs) > 3 else ""
    click.echo(f"{verb} {plan.dest}: {concept}/ ({plan.images} images){reg}, model/, log/")
    mode = {"symlink": "symlinks", "hardlink": "hard links", "copy": "copies"}[plan.request.mode]
    if plan.changes:
        click.echo(
            f"  {len(plan.add)} added, {len(plan.replace)} updated, {len(plan.remove)} removed, "
            f"{plan.kept} unchanged ({mode})"
        )
    else:
        click.echo(f"  nothing to change: all {plan.kept} files are in place ({mode})")
    if dry_run or verbose:
        for link in plan.add:
            click.echo(f"  + {link.target}")
        for link in plan.replace:
            click.echo(f"  ~ {link.target}")
        for target in plan.remove:
            click.echo(f"  - {target}")
    settings = plan.dest / "kohya-orch.toml"
    if dry_run:
        state = "kept (yours)" if settings.exists() else "would be written"
        click.echo(f"Settings: {settings} {state}")
        click.echo("Dry run: nothing was changed.")
        return
    click.echo(f"Settings: {settings} {'written' if written else 'kept (yours)'}")
    click.echo(f"Next: kohya-orch config {plan.dest}")


def _as_json(
    plan: PreparePlan, dry_run: bool, written: bool | None, notes: list[str]
) -> dict[str, Any]:
    return {
        "dest": str(plan.dest),
        "dry_run": dry_run,
        "model": str(plan.request.model),
        "model_family": plan.model_label,
        "image_dir": plan.dirs[0],
        "images": plan.images,
        "reg_images": plan.reg_images,
        "mode": plan.request.mode,
        "added": [link.target for link in plan.add],
        "updated": [link.target for link in plan.replace],
        "removed": plan.remove,
        "unchanged": plan.kept,
        "settings_written": written,
        "warnings": plan.warnings + notes[1:],
        "left_untouched": plan.skipped,
    }


COMMANDS: list[click.Command] = [prepare_command]
