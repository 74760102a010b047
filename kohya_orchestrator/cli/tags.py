"""`tags`: bulk tag edits across a folder's captions; the `captions --stats` table."""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any

import click

from kohya_orchestrator.cli.captions import ext_option, iterate_with, trigger_param
from kohya_orchestrator.cli.common import (
    count,
    echo_json,
    handle_errors,
    json_option,
    verbose_option,
    warn,
)
from kohya_orchestrator.dataset.captions import Trigger
from kohya_orchestrator.errors import InputError


def trigger_of(folder: Path, trigger: Trigger | None, ext: str) -> Trigger:
    if trigger is not None:
        return trigger
    from kohya_orchestrator.dataset.tagstats import tag_stats

    found = tag_stats(folder, None, ext).trigger
    if found is None:
        raise InputError(
            f"Cannot tell the trigger of the captions in {folder}.",
            "Give it: --trigger yumoto_hakone",
        )
    return found


@click.command("tags")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.argument(
    "operation", required=False, type=click.Choice(["add", "remove", "replace", "first"])
)
@click.argument("values", nargs=-1)
@click.option("--trigger", callback=trigger_param, help="The trigger (default: guessed).")
@click.option(
    "--prune-traits",
    is_flag=True,
    help="Propose removing the character's traits (hair, eyes, fixed accessories) that most "
    "captions share, so the trigger absorbs them; written only with --apply.",
)
@click.option(
    "--min-share",
    type=click.IntRange(1, 100),
    default=50,
    show_default=True,
    help="--prune-traits: the share of captions (%) a trait needs.",
)
@click.option("--apply", "apply_prune", is_flag=True, help="--prune-traits: remove them.")
@ext_option
@click.option("-n", "--dry-run", is_flag=True, help="Show each caption's change; write nothing.")
@verbose_option
@json_option
@handle_errors
def tags_command(
    folder: Path,
    operation: str | None,
    values: tuple[str, ...],
    trigger: Trigger | None,
    prune_traits: bool,
    min_share: int,
    apply_prune: bool,
    ext: str,
    dry_run: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Edit the tags of every caption in FOLDER: its caption file and the embedded caption.

    add TAG...: append the tags a caption lacks; remove TAG...: drop them; replace OLD NEW:
    rename a tag; first TAG...: move the tags right after the trigger. Several tags may
    be given in one comma-separated argument. Tags compare ignoring case; the trigger
    stays first. Written as `caption` writes (each file atomically, the image first, under
    the folder's lock); running it again changes nothing, and finishes a stopped run.

    --prune-traits lists the tags most captions share that describe the character (hair
    and eye colour, glasses and other fixed accessories): removing them lets the trigger
    learn them. It writes only with --apply.

    \b
    Examples:
      kohya-orch tags . add "glasses, black hair" --dry-run
      kohya-orch tags . replace black_hair "black hair"
      kohya-orch tags . remove "simple background"
      kohya-orch tags . first 1boy
      kohya-orch tags . --prune-traits --min-share 60
      kohya-orch tags . --prune-traits --apply
    """
    from kohya_orchestrator.dataset.scan import require_folder
    from kohya_orchestrator.dataset.tagedit import edit

    require_folder(folder)
    if prune_traits == (operation is not None):
        raise click.UsageError(
            "Give one operation (add, remove, replace, first) or --prune-traits."
        )
    trig = trigger_of(folder, trigger, ext)
    if prune_traits:
        from kohya_orchestrator.dataset.tagstats import tag_stats, trait_candidates

        found = trait_candidates(tag_stats(folder, trig, ext), min_share)
        if not as_json:
            for row in found:
                click.echo(f"  {row.tag}: {row.images} captions ({row.share:.0%})")
        if not found or not apply_prune:
            if as_json:
                echo_json({"folder": str(folder), "traits": [r.tag for r in found]})
            elif found:
                click.echo(
                    f"{count(len(found), 'trait')} in at least {min_share}% of the captions; "
                    "remove them with --apply (the trigger then learns them)."
                )
            else:
                click.echo(f"No trait tag is in {min_share}% or more of the captions.")
            return
        operation, values = "remove", tuple(r.tag for r in found)
    assert operation is not None
    transform = edit(operation, values)
    from kohya_orchestrator.locking import folder_lock

    with nullcontext() if dry_run else folder_lock(folder, "tags"):
        run_edit(
            folder,
            trig,
            transform,
            ext,
            captionless=operation == "add",
            dry_run=dry_run,
            verbose=verbose,
            as_json=as_json,
        )


def run_edit(
    folder: Path,
    trigger: Trigger,
    transform: Any,
    ext: str,
    *,
    captionless: bool,
    dry_run: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Plan the edit, show it (and unless `dry_run`, apply it); exit 1 on failures."""
    from kohya_orchestrator.dataset.caption_apply import apply_captions
    from kohya_orchestrator.dataset.tagedit import plan_tag_edit

    with ExitStack() as stack:
        plan = plan_tag_edit(folder, trigger, transform, ext, captionless=captionless)
        pending = plan.pending
        if not dry_run:
            result = apply_captions(plan, iterate=iterate_with(stack, "Editing", as_json))
    failures = plan.failures if dry_run else result.failures
    if as_json:
        echo_json(
            {
                "folder": str(folder),
                "dry_run": dry_run,
                "changed": [
                    {"image": str(i.image), "old": i.old_txt, "new": i.caption} for i in pending
                ],
                "failures": [{"image": str(f.path), "message": f.message} for f in failures],
            }
        )
    else:
        for item in pending if (dry_run or verbose) else []:
            old = (item.old_txt or item.embedded or "").strip()
            if old == item.caption:
                click.echo(f"{item.image.name}: {item.what_changes()} only (same caption)")
            else:
                click.echo(f"{item.image.name}:\n  - {old}\n  + {item.caption}")
        verb = "would change" if dry_run else "changed"
        done = "; nothing was written" if dry_run else ""
        click.echo(
            f"{count(len(pending), 'caption')} of {len(plan.items)} {verb}{done}."
            + (f" {len(failures)} failed." if failures else "")
        )
    for f in failures:
        warn(f.line())
    if failures:
        raise SystemExit(1)


COMMANDS: list[click.Command] = [tags_command]
