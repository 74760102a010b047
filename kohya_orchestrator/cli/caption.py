"""`caption`: trigger-first captions in .txt files and inside the images; `captions`: the check."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from kohya_orchestrator.cli.common import (
    count,
    echo_json,
    handle_errors,
    json_option,
    progress,
    verbose_option,
    warn,
)
from kohya_orchestrator.dataset.captions import Trigger, parse_trigger, split_tags
from kohya_orchestrator.errors import CaptionError, InputError

# Captions longer than this are cut in the check table unless --verbose.
TABLE_CAPTION_WIDTH = 44


def _trigger_param(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_trigger(value)
    except InputError as exc:
        raise click.BadParameter(exc.render(), ctx=ctx, param=param) from exc


def _ext_param(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from kohya_orchestrator.dataset.caption_check import normalise_ext

    try:
        return normalise_ext(value)
    except InputError as exc:
        raise click.BadParameter(exc.render(), ctx=ctx, param=param) from exc


def _tags_param(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            split_tags(value)
        except CaptionError as exc:
            raise click.BadParameter(exc.render(), ctx=ctx, param=param) from exc
    return value


def _iterate(stack: ExitStack, label: str, quiet: bool) -> Callable[[list[Any]], Iterable[Any]]:
    def iterate(items: list[Any]) -> Iterable[Any]:
        return stack.enter_context(progress(items, length=len(items), label=label, quiet=quiet))

    return iterate


_folder_argument = click.argument(
    "folder", required=False, default=".", type=click.Path(path_type=Path, file_okay=True)
)
_ext_option = click.option(
    "--ext",
    default=".txt",
    show_default=True,
    callback=_ext_param,
    help="Caption file extension (sd-scripts' caption_extension), e.g. .caption.",
)


@click.command("caption")
@click.argument("trigger", callback=_trigger_param)
@_folder_argument
@click.option(
    "--tags",
    callback=_tags_param,
    help="Caption for images that have neither a caption file nor an embedded caption.",
)
@_ext_option
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
    embedded earlier; else --tags; else empty. TRIGGER then goes first, exactly once:
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
      kohya-orch caption yumoto_hakone . --ext .caption
      caption_all yumoto_hakone
    """
    if check:
        _run_check(folder, trigger, ext, quiet=quiet, verbose=verbose, as_json=as_json)
        return
    from kohya_orchestrator.dataset.caption_apply import apply_captions, plan_captions

    with ExitStack() as stack:
        plan = plan_captions(
            folder,
            trigger,
            tags,
            ext,
            overwrite_generation_info,
            iterate=_iterate(stack, "Reading", quiet or as_json),
        )
    if not (quiet or as_json):
        for w in plan.warnings:
            warn(w.line())
    if dry_run:
        _report_dry_run(plan, verbose=verbose, quiet=quiet, as_json=as_json)
        return
    with ExitStack() as stack:
        result = apply_captions(plan, iterate=_iterate(stack, "Captioning", quiet or as_json))
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
            }
        )
    elif not quiet:
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
            f"up to date{_failed(result.failures)}. "
            f"Train with keep_tokens = {plan.trigger.keep_tokens}."
        )
    _fail_if(result.failures, len(plan.items), "failed and were left untouched")


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
            f"to write){_failed(plan.failures)}; nothing was written. "
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


def _fail_if(failures: list[Any], total: int, what: str) -> None:
    if failures:
        lines = [f"{len(failures)} of {total} images {what}:"]
        lines.extend(f"  - {f.line()}" for f in failures)
        raise click.ClickException("\n".join(lines))


def _failed(failures: list[Any]) -> str:
    return f", {len(failures)} failed" if failures else ""


@click.command("captions")
@_folder_argument
@click.option(
    "--trigger",
    callback=_trigger_param,
    help="The trigger captions must start with (default: guessed from the captions).",
)
@_ext_option
@click.option("-q", "--quiet", is_flag=True, help="Only the summary line.")
@verbose_option
@json_option
@handle_errors
def captions_command(
    folder: Path, trigger: Trigger | None, ext: str, quiet: bool, verbose: bool, as_json: bool
) -> None:
    """Check the captions: every image's caption file and embedded caption, side by side.

    Flags images without a caption, caption files that differ from the embedded
    caption, captions that do not start with the trigger, stems shared by two images
    (one caption file for both), untidy caption files and images whose content is
    another format than their extension. Shows the keep_tokens value the trigger
    implies. Without --trigger the trigger is guessed: the first tag most captions
    start with, plus the tags all of those captions have next. Writes nothing; the
    exit code is 1 when anything is flagged.

    \b
    Examples:
      kohya-orch captions demo/yumoto_hakone
      kohya-orch captions . --trigger "takeru_higa, takeru higa, takeru, higa"
      kohya-orch captions . --json

    FOLDER may be a project folder (DEST): every concept folder in DEST/img/ is checked.
    """
    from kohya_orchestrator.sdscripts.concepts import used_concepts

    img = folder / "img"
    concepts = [c.path for c in used_concepts(img)] if img.is_dir() else []
    if not concepts:
        _run_check(folder, trigger, ext, quiet=quiet, verbose=verbose, as_json=as_json)
        return
    flagged = False
    docs: dict[str, Any] = {}
    for concept in concepts:
        name = concept.relative_to(folder).as_posix()
        if not as_json:
            click.echo(f"== {name}")
        report = _run_check(
            concept, trigger, ext, quiet=quiet, verbose=verbose, as_json=as_json, stop=False
        )
        docs[name] = report.to_dict()
        flagged |= bool(report.flagged)
    if as_json:
        echo_json(docs)
    if flagged:
        raise SystemExit(1)


def _run_check(
    folder: Path,
    trigger: Trigger | None,
    ext: str,
    *,
    quiet: bool,
    verbose: bool,
    as_json: bool,
    stop: bool = True,
) -> Any:
    from kohya_orchestrator.dataset.caption_check import check_captions

    with ExitStack() as stack:
        report = check_captions(
            folder, trigger, ext, iterate=_iterate(stack, "Reading", quiet or as_json)
        )
    if as_json:
        if stop:
            echo_json(report.to_dict())
    else:
        if not quiet:
            click.echo(_render_table(report, verbose=verbose) + "\n")
        click.echo(_check_summary(report))
    if report.flagged and stop:
        raise SystemExit(1)
    return report


def _render_table(report: Any, *, verbose: bool) -> str:
    from kohya_orchestrator.dataset.captions import normalise_caption

    width = None if verbose else TABLE_CAPTION_WIDTH
    rows = [("IMAGE", report.ext.upper().lstrip(".") + " CAPTION", "EMBEDDED", "FLAGS")]
    for r in report.rows:
        txt = "-" if r.txt is None else _cut(normalise_caption(r.txt) or "(empty)", width)
        if r.embedded is None:
            emb = "-"
        elif r.txt is not None and normalise_caption(r.embedded) == normalise_caption(r.txt):
            emb = "(same)"
        else:
            emb = _cut(r.embedded, width)
        rows.append((r.image.name, txt, emb, ", ".join(r.flags)))
    widths = [max(_width(row[i]) for row in rows) for i in range(3)]
    lines = []
    for row in rows:
        cells = [_pad(row[i], widths[i]) for i in range(3)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    problems = [(r.image.name, p) for r in report.rows for p in r.problems]
    if problems:
        lines.append("")
        lines.append("Problems:")
        lines.extend(f"  {name}: {p}" for name, p in problems)
    return "\n".join(lines)


def _check_summary(report: Any) -> str:
    if report.trigger is None:
        trig = "Trigger: unknown (no leading tag is shared by most captions; give --trigger)."
    else:
        how = "" if report.trigger_source == "given" else " (guessed from the captions)"
        trig = f"Trigger: {report.trigger.text}{how}; keep_tokens = {report.trigger.keep_tokens}."
    counts = report.flag_counts()
    flagged = len(report.flagged)
    line = f"{count(len(report.rows), 'image')}, {len(report.rows) - flagged} fine"
    if flagged:
        detail = ", ".join(f"{name} {n}" for name, n in counts.items())
        line += f", {flagged} flagged ({detail})"
    return f"{trig}\n{line}."


def _cut(text: str, width: int | None) -> str:
    if width is None or _width(text) <= width:
        return text
    out = ""
    for ch in text:
        if _width(out + ch) > width - 1:
            break
        out += ch
    return out + "…"


def _width(text: str) -> int:
    # CJK and emoji take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


COMMANDS: list[click.Command] = [caption_command, captions_command]
