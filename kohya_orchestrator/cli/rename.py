"""`kohya-orch rename`: images to PREFIX_<n>, crash-safe, with --dry-run and --undo."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kohya_orchestrator.cli.common import (
    count,
    echo_json,
    handle_errors,
    json_option,
    progress,
    verbose_option,
    warn_left_alone,
)

if TYPE_CHECKING:
    from kohya_orchestrator.dataset.journal import Journal
    from kohya_orchestrator.dataset.rename import RenamePlan

# Ask before touching at least this many files, and only when a person is at the keyboard.
CONFIRM_MIN_FILES = 100


def _moves_json(moves: Any) -> list[dict[str, str]]:
    return [{"from": m.src, "to": m.dst} for m in moves]


def _recovered_text(journal: Journal) -> str:
    what = "rename" if journal.state == "applying" else "undo"
    return f"Completed an interrupted {what} of {len(journal.moves)} files first."


@click.command("rename")
@click.argument("prefix", required=False, metavar="PREFIX")
@click.argument(
    "folder", required=False, metavar="[DIR]", type=click.Path(path_type=Path, file_okay=False)
)
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--undo", is_flag=True, help="Reverse the last rename in DIR from its journal.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before renaming many files.")
@verbose_option
@json_option
@handle_errors
def rename_command(
    prefix: str | None,
    folder: Path | None,
    dry_run: bool,
    undo: bool,
    yes: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Rename every image in DIR (default: here) to PREFIX_<n>, captions included.

    Images (.webp .jpg .jpeg .png, any case) are numbered in natural order of their
    current names, zero-padded to the width of the highest number; every file of the
    same stem (.txt, .caption, .npz, ...) moves with its image. Images already named
    PREFIX_<n> keep their names and new ones get the next numbers, so running it
    again changes nothing. Any collision (a name taken by a file that is not renamed,
    names differing only by case, two images with one stem) is refused with the full
    list, before anything moves. A journal (.kohya-orch-rename.json) makes it
    crash-safe: an interrupted rename is completed on the next run, and --undo
    reverses the last one. With --undo, a single argument is the folder.

    \b
    Examples:
      kohya-orch rename yumoto_hakone ~/datasets/yumoto_hakone
      kohya-orch rename yumoto_hakone . --dry-run
      kohya-orch rename --undo ~/datasets/yumoto_hakone
      rename_all yumoto_hakone
    """
    if undo and folder is None and prefix is not None:
        folder = Path(prefix)
        prefix = None
    # Absolute in messages, so "Undo with: ..." works from any folder.
    where = Path(os.path.abspath(folder or Path(".")))
    if prefix is None and not undo:
        raise click.UsageError("Missing argument 'PREFIX'.")
    with _locked(where, "rename --undo" if undo else "rename", dry_run=dry_run):
        if undo:
            _undo(where, dry_run=dry_run, verbose=verbose, as_json=as_json)
        else:
            assert prefix is not None
            _rename(prefix, where, dry_run, yes, verbose, as_json)


@contextmanager
def _locked(folder: Path, command: str, *, dry_run: bool) -> Iterator[None]:
    """The folder's lock for a run that changes it (a dry run only reads)."""
    from kohya_orchestrator.dataset.scan import require_folder
    from kohya_orchestrator.locking import folder_lock

    if dry_run:
        yield
        return
    with folder_lock(require_folder(folder), command):
        yield


def _rename(
    prefix: str, folder: Path, dry_run: bool, yes: bool, verbose: bool, as_json: bool
) -> None:
    # Imported here so that `kohya-orch --help` does not pay for the dataset modules.
    from kohya_orchestrator.dataset import rename as rn
    from kohya_orchestrator.dataset.names import validate_file_prefix
    from kohya_orchestrator.dataset.scan import require_folder

    validate_file_prefix(prefix)
    require_folder(folder)
    pending = rn.pending_journal(folder)
    recovered = None
    if pending is not None and not dry_run:
        recovered = rn.complete_pending(folder)
        if not as_json and recovered is not None:
            click.echo(_recovered_text(recovered))
    if pending is not None and dry_run:
        plan = rn.plan_rename(folder, rn.listing_after(folder, pending), prefix)
        if not as_json:
            click.echo(
                f"An interrupted rename of {len(pending.moves)} files would be completed first."
            )
    else:
        plan = rn.plan_folder(folder, prefix)
    rn.require_clean(plan)
    total = len(plan.moves)
    if (
        not dry_run
        and total >= CONFIRM_MIN_FILES
        and not yes
        and sys.stdin.isatty()
        and not as_json
    ):
        side = plan.sidecars_renamed
        sidecars = f" and {count(side, 'sidecar file')}" if side else ""
        click.confirm(
            f"Rename {count(plan.images_renamed, 'image')}{sidecars} in {folder}?", abort=True
        )
    if not dry_run and total:
        steps = rn.iter_apply(plan)
        with progress(steps, length=2 * total + 3, label="renaming", quiet=as_json) as bar:
            for _ in bar:
                pass
    if as_json:
        echo_json(
            {
                "folder": str(folder),
                "prefix": prefix,
                "dry_run": dry_run,
                "width": plan.width,
                "images": plan.images,
                "images_renamed": plan.images_renamed,
                "sidecars_renamed": plan.sidecars_renamed,
                "kept": len(plan.kept),
                "renamed": _moves_json(plan.moves),
                "recovered": len(recovered.moves) if recovered is not None else 0,
            }
        )
        return
    _report(plan, folder, dry_run=dry_run, verbose=verbose)


def _report(plan: RenamePlan, folder: Path, *, dry_run: bool, verbose: bool) -> None:
    warn_left_alone(folder, "rename")
    if not plan.moves:
        click.echo(
            f"Nothing to rename: all {plan.images} images in {folder} are already "
            f"named {plan.prefix}_<n>."
        )
        return
    side = plan.sidecars_renamed
    sidecars = f" and {count(side, 'sidecar file')}" if side else ""
    kept = f"; {len(plan.kept)} already named" if plan.kept else ""
    verb = "Would rename" if dry_run else "Renamed"
    images = count(plan.images_renamed, "image")
    click.echo(f"{verb} {images}{sidecars} in {folder}{kept}.")
    if dry_run or verbose:
        for m in plan.moves:
            click.echo(f"  {m.src} -> {m.dst}")
    if dry_run:
        click.echo("Dry run: nothing was changed.")
    else:
        click.echo(f"Undo with: kohya-orch rename --undo {folder}")


def _undo(folder: Path, *, dry_run: bool, verbose: bool, as_json: bool) -> None:
    from kohya_orchestrator.dataset import rename as rn

    journal = rn.undo_journal(folder)
    if not dry_run:
        for _ in rn.iter_undo(folder):
            pass
    pairs = [(m.dst, m.src) for m in journal.moves]
    if as_json:
        echo_json(
            {
                "folder": str(folder),
                "dry_run": dry_run,
                "undone": len(pairs),
                "renamed": [{"from": a, "to": b} for a, b in pairs],
            }
        )
        return
    verb = "Would restore" if dry_run else "Restored"
    click.echo(f"{verb} the old names of {len(pairs)} files in {folder}.")
    if dry_run or verbose:
        for a, b in pairs:
            click.echo(f"  {a} -> {b}")
    if dry_run:
        click.echo("Dry run: nothing was changed.")


COMMANDS: list[click.Command] = [rename_command]
