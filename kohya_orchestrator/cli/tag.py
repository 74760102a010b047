"""`tag`: auto-tag a folder with sd-scripts' own WD14 tagger, merged by our caption rules."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import click

from kohya_orchestrator.cli.captions import ext_option, trigger_param
from kohya_orchestrator.cli.common import handle_errors, json_option, verbose_option
from kohya_orchestrator.dataset.captions import Trigger
from kohya_orchestrator.errors import PreflightError


@click.command("tag")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.argument("trigger", required=False, callback=trigger_param)
@click.option(
    "--repo",
    "repo_id",
    default="SmilingWolf/wd-vit-tagger-v3",
    show_default=True,
    help="The tagger's Hugging Face repo (a WD v3 tagger: wd-swinv2-tagger-v3, "
    "wd-eva02-large-tagger-v3 are larger and slower).",
)
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the models are kept (default: $HF_HOME/wd14_tagger_model, in the Hugging "
    "Face cache).",
)
@click.option(
    "--general-threshold",
    type=click.FloatRange(0, 1),
    default=0.35,
    show_default=True,
    help="Lower: more tags, more wrong ones.",
)
@click.option(
    "--character-threshold",
    type=click.FloatRange(0, 1),
    default=0.85,
    show_default=True,
    help="The confidence a character tag needs.",
)
@click.option("--undesired-tags", default="", help='Tags never written, e.g. "solo, 1boy".')
@click.option(
    "--keep-underscores",
    is_flag=True,
    help="Write black_hair, not black hair (spaces by default, as Pony users write).",
)
@click.option("--character-tags-first", is_flag=True, help="Character tags before the others.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--replace",
    "replace_tags",
    is_flag=True,
    help="The tagger's tags replace each caption instead of adding to it.",
)
@ext_option
@click.option(
    "--sd-scripts",
    type=click.Path(path_type=Path, file_okay=False),
    help="The sd-scripts checkout (default: found as `train` finds it).",
)
@click.option("--python", help="The trainer's Python (default: found as `train` finds it).")
@click.option(
    "-n", "--dry-run", is_flag=True, help="Tag, and show each caption's change; write nothing."
)
@verbose_option
@json_option
@handle_errors
def tag_command(
    folder: Path,
    trigger: Trigger | None,
    repo_id: str,
    model_dir: Path | None,
    general_threshold: float,
    character_threshold: float,
    undesired_tags: str,
    keep_underscores: bool,
    character_tags_first: bool,
    batch_size: int,
    replace_tags: bool,
    ext: str,
    sd_scripts: Path | None,
    python: str | None,
    dry_run: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Auto-tag the images of FOLDER with sd-scripts' WD14 tagger (--onnx).

    The tagger runs through the trainer's Python on links in a scratch folder (it would
    overwrite the caption files otherwise); its tags are merged into each caption:
    TRIGGER first, then the existing tags, then the new ones it lacks (--replace: the
    tagger's alone). Written like `caption`: the caption file and the embedded caption,
    atomically. TRIGGER defaults to the one the captions use. The default tagger is
    SmilingWolf/wd-vit-tagger-v3, a current WD v3 model and the quickest of them on a CPU
    or a Mac (sd-scripts' own default is the older wd-v1-4-convnext-tagger-v2). The model
    is downloaded once by the script (set HF_HUB_OFFLINE=1 to forbid it).

    \b
    Examples:
      kohya-orch tag . yumoto_hakone --dry-run
      kohya-orch tag . yumoto_hakone --undesired-tags "solo, male focus"
      kohya-orch tag . --replace --general-threshold 0.5
    """
    from kohya_orchestrator.cli.tags import run_edit, trigger_of
    from kohya_orchestrator.dataset.scan import require_folder, scan_folder
    from kohya_orchestrator.dataset.tagedit import merge_tagged
    from kohya_orchestrator.locking import folder_lock
    from kohya_orchestrator.sdscripts.checkout import locate_python, locate_sd_scripts
    from kohya_orchestrator.train import tagger as tg

    require_folder(folder)
    trig = trigger_of(folder, trigger, ext)
    found, tried = locate_sd_scripts(tg.TAGGER_SCRIPT, sd_scripts, os.environ, Path.home())
    if found is None:
        raise PreflightError(
            "Cannot run the WD14 tagger; nothing was changed:",
            [f"no sd-scripts checkout with {tg.TAGGER_SCRIPT} was found (tried {tried})"],
            "Give --sd-scripts DIR, set KOHYA_SD_SCRIPTS, or run `make sd-scripts`.",
        )
    py = locate_python(python, found)[0]
    options = tg.TaggerOptions(
        repo_id,
        model_dir,
        general_threshold,
        character_threshold,
        undesired_tags,
        not keep_underscores,
        character_tags_first,
        batch_size,
    )
    where = Path(os.path.abspath(model_dir or tg.default_model_dir(os.environ, Path.home())))
    images = [e.image for e in scan_folder(folder)]
    with nullcontext() if dry_run else folder_lock(folder, "tag"):
        tagged = tg.run_tagger(images, py, found, options, where, os.environ)
        run_edit(
            folder,
            trig,
            merge_tagged(tagged, replace=replace_tags),
            ext,
            captionless=True,
            dry_run=dry_run,
            verbose=verbose,
            as_json=as_json,
        )


COMMANDS: list[click.Command] = [tag_command]
