"""`kohya-orch prepare`: the kohya folder layout and settings of a training project."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kohya_orchestrator.cli.common import (
    count,
    echo_json,
    handle_errors,
    json_option,
    set_option,
    verbose_option,
    warn,
)

if TYPE_CHECKING:
    from kohya_orchestrator.config.concepts import Concept
    from kohya_orchestrator.project.prepare import PreparePlan, PrepareRequest


@click.command("prepare")
@click.argument("name")
@click.option(
    "--images",
    "images",
    multiple=True,
    metavar="DIR[:REPEATS[:CLASS]]",
    help="A folder of training images and their .txt captions; repeat it for several "
    "concepts, each with its own repeats and class tokens (img/<repeats>_<class>).",
)
@click.option(
    "--dest",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The training project folder to create or sync.",
)
@click.option(
    "--model",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The base checkpoint (.safetensors); its family is checked now.",
)
@click.option(
    "--from",
    "from_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Settings from a kohya_ss GUI preset or saved config (JSON or TOML), or from a "
    "file `kohya-orch import` wrote; this command's own values win.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    help="Repeats of a folder that gives none (default: the --from file's, else 7).",
)
@click.option("--trigger", help="The trigger captions start with (default: NAME).")
@click.option(
    "--reg",
    "reg",
    multiple=True,
    metavar="DIR[:REPEATS[:CLASS]]",
    help="A folder of regularisation images (needs --class-prompt); repeatable.",
)
@click.option(
    "--reg-repeats",
    type=click.IntRange(min=1),
    help="Repeats of a regularisation folder that gives none (default 1).",
)
@click.option("--class-prompt", help='The class, e.g. "1boy, man, male focus, male, solo".')
@click.option(
    "--symlink", "mode", flag_value="symlink", default=True, help="Link with symlinks (default)."
)
@click.option("--hardlink", "mode", flag_value="hardlink", help="Link with hard links.")
@click.option("--copy", "mode", flag_value="copy", help="Copy the files instead of linking.")
@click.option(
    "--fix-images/--no-fix-images",
    default=True,
    help="Put a corrected copy into DEST for each image sd-scripts would misread (EXIF "
    "rotation, transparency, 16-bit, CMYK, animation; HEIC/AVIF/GIF/TIFF converted); on "
    "by default. The sources never change.",
)
@click.option(
    "--background",
    default="white",
    show_default=True,
    help="The colour transparency is flattened on: white, black, gray or #rrggbb.",
)
@set_option("A setting for the new kohya-orch.toml (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print what would change and change nothing.")
@verbose_option
@json_option
@handle_errors
def prepare_command(
    name: str,
    images: tuple[str, ...],
    dest: Path,
    model: Path | None,
    from_file: Path | None,
    repeats: int | None,
    trigger: str | None,
    reg: tuple[str, ...],
    reg_repeats: int | None,
    class_prompt: str | None,
    mode: str,
    fix_images: bool,
    background: str,
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

    Several concepts: give --images once per folder, as DIR:REPEATS:CLASS (the first
    folder is img/<repeats>_<NAME>, the others img/<repeats>_<CLASS>). --from takes the
    settings of a kohya_ss GUI preset; its image folders and model are used when the
    command line gives none.

    \b
    Examples:
      kohya-orch prepare yumoto_hakone --images ~/datasets/yumoto_hakone \\
          --dest ~/training/yumoto_hakone --model ~/models/ponyDiffusionV6XL.safetensors
      kohya-orch prepare hakone --images suit:7 --images casual:3:hakone_casual \\
          --dest train --model sdxl.safetensors --from "SDXL - LoRA v1.0.json"
      kohya-orch prepare yumoto_hakone --images imgs --dest train --model sdxl.safetensors \\
          --repeats 10 --copy --set epochs=10 --dry-run
      kohya-orch prepare yumoto_hakone --images imgs --dest train --model sdxl.safetensors \\
          --reg reg_imgs --reg-repeats 1 --class-prompt "1boy, man"
    """
    from kohya_orchestrator.project.apply import left_untouched_error, run_prepare

    request, import_notes = _request(
        name,
        images,
        dest,
        model,
        from_file,
        repeats,
        trigger,
        reg,
        reg_repeats,
        class_prompt,
        mode,
        overrides,
    )
    for note in import_notes:
        warn(note)
    request = replace(request, fix_images=fix_images, background=background)
    plan, settings = run_prepare(request, dry_run=dry_run)
    settings_note: list[str] = []
    settings_written: bool | None = None
    if settings is not None:
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


def _concepts(given: tuple[str, ...], repeats: int, option: str) -> list[Concept]:
    from kohya_orchestrator.config.concepts import parse_concept_arg

    out = []
    for text in given:
        try:
            out.append(parse_concept_arg(text, repeats))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
    return out


def _request(
    name: str,
    images: tuple[str, ...],
    dest: Path,
    model: Path | None,
    from_file: Path | None,
    repeats: int | None,
    trigger: str | None,
    reg: tuple[str, ...],
    reg_repeats: int | None,
    class_prompt: str | None,
    mode: str,
    overrides: tuple[str, ...],
) -> tuple[PrepareRequest, list[str]]:
    """The request the options mean: the command line first, then the --from file."""
    from kohya_orchestrator.config.concepts import Concept
    from kohya_orchestrator.project.prepare import PrepareRequest

    imported: dict[str, Any] = {}
    notes: list[str] = []
    if from_file is not None:
        from kohya_orchestrator.project.gui_import import import_file

        result = import_file(from_file)
        if result.errors:
            from kohya_orchestrator.errors import ConfigError

            raise ConfigError(
                f"The settings of {from_file} have errors; nothing was changed:",
                result.errors,
                f"See `kohya-orch import {from_file}`.",
            )
        imported = dict(result.document)
        notes += [f"--from {from_file.name}: {row.line()}" for row in result.rows if row.warn]
    train = _concepts(images, repeats or imported.get("repeats") or 7, "--images")
    if not train and "images" in imported:
        first = Concept(imported["images"], repeats or imported.get("repeats") or 7)
        train = [first, *imported.get("concepts", [])]
    if not train:
        raise click.BadParameter(
            "give --images DIR (or --from a file that names it).", param_hint="'--images'"
        )
    regs = _concepts(reg, reg_repeats or imported.get("reg_repeats") or 1, "--reg")
    if not regs and "reg" in imported:
        first = Concept(imported["reg"], reg_repeats or imported.get("reg_repeats") or 1)
        regs = [first, *imported.get("reg_concepts", [])]
    class_prompt = class_prompt or imported.get("class_prompt")
    if regs and not class_prompt and not all(c.class_tokens for c in regs):
        raise click.BadParameter("--reg needs --class-prompt.", param_hint="'--class-prompt'")
    model = model or (Path(imported["model"]) if "model" in imported else None)
    if model is None:
        raise click.BadParameter("give --model FILE.safetensors.", param_hint="'--model'")
    for key in ("images", "repeats", "concepts", "reg", "reg_repeats", "reg_concepts", "model"):
        imported.pop(key, None)
    request = PrepareRequest(
        name=name,
        images=Path(train[0].images),
        dest=dest,
        model=model,
        repeats=train[0].repeats,
        trigger=trigger or imported.pop("trigger", None) or name,
        reg=Path(regs[0].images) if regs else None,
        reg_repeats=regs[0].repeats if regs else 1,
        class_prompt=regs[0].class_tokens or class_prompt if regs else class_prompt,
        mode=mode,
        overrides=overrides,
        concepts=tuple(train[1:]),
        reg_concepts=tuple(regs[1:]),
        imported=imported or None,
    )
    return request, notes


def _report(plan: PreparePlan, *, dry_run: bool, verbose: bool, written: bool | None) -> None:
    click.echo(f"Model: {plan.request.model} ({plan.model_label})")
    verb = "Would prepare" if dry_run else "Prepared"
    folders = ", ".join(f"{s.subdir}/ ({len(s.entries)} images)" for s in plan.sources)
    click.echo(f"{verb} {plan.dest}: {folders}, model/, log/")
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
    if plan.fixes:
        verb = "would get" if dry_run else "get"
        click.echo(
            f"  {count(len(plan.fixes), 'image')} sd-scripts would misread {verb} a corrected "
            "copy instead of a link (the sources are unchanged):"
        )
        for fix in plan.fixes.values():
            click.echo(f"    {fix.line()} -> {fix.remedy(plan.request.background)}")
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
        "folders": [
            {"folder": s.subdir, "source": str(s.path), "images": len(s.entries), "reg": s.is_reg}
            for s in plan.sources
        ],
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
        "corrected_copies": [
            {
                "source": str(fix.source),
                "issues": [{"kind": i.kind, "message": i.message} for i in fix.issues],
                "remedy": fix.remedy(plan.request.background),
            }
            for fix in plan.fixes.values()
        ],
    }


COMMANDS: list[click.Command] = [prepare_command]
