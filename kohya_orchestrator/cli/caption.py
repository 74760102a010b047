"""`caption`: trigger-first captions in .txt files and inside the images (`captions`, the
check, is in cli/captions.py)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from kohya_orchestrator.cli.captions import (
    captions_command,
    ext_option,
    folder_argument,
    iterate_with,
    run_check,
    trigger_param,
)
from kohya_orchestrator.cli.common import (
    count,
    echo_json,
    handle_errors,
    json_option,
    verbose_option,
    warn,
    warn_left_alone,
)
from kohya_orchestrator.dataset.captions import Trigger, split_tags
from kohya_orchestrator.errors import CaptionError

# The exit code after Ctrl-C, as a shell reports a process ended by SIGINT.
INTERRUPTED = 130


def _tags_param(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            split_tags(value)
        except CaptionError as exc:
            raise click.BadParameter(exc.render(), ctx=ctx, param=param) from exc
    return value


@click.command("caption")
@click.argument("trigger", callback=trigger_param)
@folder_argument
@click.option(
    "--tags",
    callback=_tags_param,
    help="Tags to add to every caption (those it lacks, at the end); with --replace, the "
    "caption of every image becomes TRIGGER, --tags.",
)
@click.option(
    "--replace",
    "replace_tags",
    is_flag=True,
    help="With --tags: replace each caption (its caption file and the embedded one) "
    "instead of adding to it.",
)
@ext_option
@click.option(
    "--overwrite-generation-info",
    is_flag=True,
    help="Replace A1111/Forge generation parameters (UserComment, PNG 'parameters') "
    "with the caption instead of keeping them.",
)
@click.option("-n", "--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--check", is_flag=True, help="Show the caption check table instead (= captions).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, warnings or summary.")
@verbose_option
@json_option
@handle_errors
def caption_command(
    trigger: Trigger,
    folder: Path,
    tags: str | None,
    replace_tags: bool,
    ext: str,
    overwrite_generation_info: bool,
    dry_run: bool,
    check: bool,
    quiet: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Write trigger-first captions to <stem>.txt and embed them in the images.

    Each image's caption is its existing caption file; else the caption this tool
    embedded earlier; else empty. --tags adds the tags a caption lacks (compared ignoring
    case) at its end; --tags with --replace makes every caption TRIGGER, --tags, whatever
    it was. The summary says how many tags went where. TRIGGER then goes first, exactly once:
    a caption that starts with it is kept, a trigger found later is moved to the front.
    TRIGGER may be several comma-separated tokens, kept together as one block; its
    token count is the keep_tokens value to train with. Spaces and duplicate commas
    are tidied; the order of the other tags is kept.

    The caption is written into the image's own metadata (EXIF and XMP for JPEG and
    WebP, text chunks and XMP for PNG) without re-encoding it, and to the caption file
    as one UTF-8 line. Each file is replaced atomically, image first. Running it again
    writes nothing. Files that cannot be read are left untouched and listed; the exit
    code is then 1.

    \b
    Examples:
      kohya-orch caption yumoto_hakone demo/yumoto_hakone --dry-run
      kohya-orch caption yumoto_hakone demo/yumoto_hakone
      kohya-orch caption "takeru_higa, takeru higa, takeru, higa" . --tags "1boy, glasses"
      kohya-orch caption yumoto_hakone . --tags "glasses, black hair" --replace
      kohya-orch caption yumoto_hakone . --ext .caption
      caption_all yumoto_hakone
    """
    if check:
        run_check(folder, trigger, ext, quiet=quiet, verbose=verbose, as_json=as_json)
        return
    if replace_tags and tags is None:
        raise click.BadParameter("--replace needs --tags.", param_hint="'--replace'")
    tags_given = (tags, replace_tags)
    from kohya_orchestrator.dataset.scan import require_folder
    from kohya_orchestrator.locking import folder_lock

    if dry_run:
        _caption(
            trigger,
            folder,
            tags_given,
            ext,
            overwrite_generation_info,
            True,
            quiet,
            verbose,
            as_json,
        )
        return
    with folder_lock(require_folder(folder), "caption") as held:
        result = _caption(
            trigger,
            folder,
            tags_given,
            ext,
            overwrite_generation_info,
            False,
            quiet,
            verbose,
            as_json,
        )
        assert result is not None
        result.removed_temps = held.removed
        _report(result, folder, verbose=verbose, quiet=quiet, as_json=as_json)


def _caption(
    trigger: Trigger,
    folder: Path,
    tags_given: tuple[str | None, bool],
    ext: str,
    overwrite_generation_info: bool,
    dry_run: bool,
    quiet: bool,
    verbose: bool,
    as_json: bool,
) -> Any:
    """Plan (and unless `dry_run`, apply); the result, or None after a dry run's report."""
    from kohya_orchestrator.dataset.caption_apply import apply_captions, plan_captions

    try:
        with ExitStack() as stack:
            plan = plan_captions(
                folder,
                trigger,
                tags_given[0],
                ext,
                overwrite_generation_info,
                replace_tags=tags_given[1],
                iterate=iterate_with(stack, "Reading", quiet or as_json),
            )
    except KeyboardInterrupt:
        click.echo("Interrupted while reading the images: nothing was written.", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
    if not (quiet or as_json):
        for w in plan.warnings:
            warn(w.line())
        warn_left_alone(folder, "caption")
    if dry_run:
        _report_dry_run(plan, verbose=verbose, quiet=quiet, as_json=as_json)
        return None
    with ExitStack() as stack:
        return apply_captions(plan, iterate=iterate_with(stack, "Captioning", quiet or as_json))


def _report(result: Any, folder: Path, *, verbose: bool, quiet: bool, as_json: bool) -> None:
    plan = result.plan
    if result.interrupted:
        _report_interrupted(result)
    if as_json:
        echo_json(
            {
                **_plan_json(plan, dry_run=False),
                "written": {
                    "images": [str(p) for p in result.images_written],
                    "caption_files": [str(p) for p in result.captions_written],
                },
                "removed_temp_files": [str(p) for p in result.removed_temps],
                "failures": [{"image": str(f.path), "message": f.message} for f in result.failures],
                "interrupted": result.interrupted,
            }
        )
    elif not quiet and not result.interrupted:
        failed = {f.path for f in result.failures}
        if verbose:
            for item in plan.items:
                if item.image not in failed:
                    click.echo(_item_line(item, done=True))
        for p in result.removed_temps:
            click.echo(f"Removed a temp file left by an interrupted run: {p.name}")
        click.echo(
            f"{count(len(plan.items), 'image')} in {folder}: "
            f"{count(len(result.images_written), 'image')} embedded, "
            f"{count(len(result.captions_written), plan.ext + ' file')} written, "
            f"{len([i for i in plan.items if not i.changes and i.error is None])} already "
            f"up to date{_failed(result.failures)}.{tags_summary(plan)} "
            f"Train with keep_tokens = {plan.trigger.keep_tokens}."
        )
    if result.interrupted:
        raise click.exceptions.Exit(INTERRUPTED)
    _fail_if(result.failures, len(plan.items), "failed and were left untouched")


def _report_interrupted(result: Any) -> None:
    """Ctrl-C while writing: what was done, and that running again finishes it."""
    plan = result.plan
    click.echo(
        f"Interrupted: {result.handled} of {count(len(plan.pending), 'image')} to caption "
        f"were done ({count(len(result.images_written), 'image')} embedded, "
        f"{count(len(result.captions_written), plan.ext + ' file')} written"
        f"{_failed(result.failures)}); the other {result.not_begun} are unchanged. "
        "Run the same command again to finish: it skips what is already done.",
        err=True,
    )


def _report_dry_run(plan: Any, *, verbose: bool, quiet: bool, as_json: bool) -> None:
    if as_json:
        echo_json({**_plan_json(plan, dry_run=True)})
    elif not quiet:
        for item in plan.items:
            if item.changes or (verbose and item.error is None):
                click.echo(_item_line(item, done=False))
        for p in plan.stale_temps:
            click.echo(f"would remove a temp file left by an interrupted run: {p.name}")
        pending = plan.pending
        n_img = sum(1 for i in pending if i.image_changes)
        n_txt = sum(1 for i in pending if i.txt_changes)
        click.echo(
            f"Dry run: {len(pending)} of {len(plan.items)} images would change "
            f"({count(n_img, 'image')} to embed, {count(n_txt, plan.ext + ' file')} "
            f"to write){_failed(plan.failures)}; nothing was written.{tags_summary(plan)} "
            f"Train with keep_tokens = {plan.trigger.keep_tokens}."
        )
    _fail_if(plan.failures, len(plan.items), "cannot be captioned")


def _item_line(item: Any, *, done: bool) -> str:
    from kohya_orchestrator.dataset.caption_apply import source_name

    if not item.changes:
        return f"{item.image.name}: up to date: {item.caption}"
    verb = "wrote" if done else "would write"
    return (
        f"{item.image.name}: {verb} {item.what_changes()} "
        f"({source_name(item.source)}): {item.caption}"
    )


def _plan_json(plan: Any, *, dry_run: bool) -> dict[str, Any]:
    return {
        "folder": str(plan.folder),
        "trigger": {
            "text": plan.trigger.text,
            "tokens": list(plan.trigger.tokens),
            "keep_tokens": plan.trigger.keep_tokens,
        },
        "caption_extension": plan.ext,
        "dry_run": dry_run,
        "images": [i.to_dict() for i in plan.items],
        "failures": [{"image": str(f.path), "message": f.message} for f in plan.failures],
    }


def tags_summary(plan: Any) -> str:
    """What --tags did (or would do), as a sentence after the summary; "" without --tags."""
    if plan.tags is None:
        return ""
    ok = [i for i in plan.items if i.error is None]
    if plan.replace_tags:
        return f" --tags --replace: {count(len(ok), 'caption')} set to the trigger and --tags."
    got = [i for i in ok if i.tags_added]
    had = len(ok) - len(got)
    n_tags = sum(len(i.tags_added) for i in got)
    tail = f"; {had} already had them all" if had else ""
    return f" --tags: added {count(n_tags, 'tag')} to {count(len(got), 'image')}{tail}."


def _fail_if(failures: list[Any], total: int, what: str) -> None:
    if failures:
        lines = [f"{len(failures)} of {total} images {what}:"]
        lines.extend(f"  - {f.line()}" for f in failures)
        raise click.ClickException("\n".join(lines))


def _failed(failures: list[Any]) -> str:
    return f", {len(failures)} failed" if failures else ""


COMMANDS: list[click.Command] = [caption_command, captions_command]
