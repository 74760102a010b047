"""`captions`: the caption check table; the options `caption` and `captions` share."""

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
)
from kohya_orchestrator.dataset.captions import Trigger, parse_trigger
from kohya_orchestrator.errors import InputError

# Captions longer than this are cut in the check table unless --verbose.
TABLE_CAPTION_WIDTH = 44
# Tags shown by --stats unless --verbose.
STATS_ROWS = 40


def trigger_param(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
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


def iterate_with(stack: ExitStack, label: str, quiet: bool) -> Callable[[list[Any]], Iterable[Any]]:
    def iterate(items: list[Any]) -> Iterable[Any]:
        return stack.enter_context(progress(items, length=len(items), label=label, quiet=quiet))

    return iterate


folder_argument = click.argument(
    "folder", required=False, default=".", type=click.Path(path_type=Path, file_okay=True)
)
ext_option = click.option(
    "--ext",
    default=".txt",
    show_default=True,
    callback=_ext_param,
    help="Caption file extension (sd-scripts' caption_extension), e.g. .caption.",
)


@click.command("captions")
@folder_argument
@click.option(
    "--trigger",
    callback=trigger_param,
    help="The trigger captions must start with (default: guessed from the captions).",
)
@ext_option
@click.option(
    "--stats",
    is_flag=True,
    help="A frequency table instead: each tag, how many captions have it and their share; "
    "where the trigger stands; captions that are the trigger alone.",
)
@click.option(
    "--duplicates",
    is_flag=True,
    help="List groups of near-identical images instead (perceptual hash; needs the "
    "`dupes` extra). Nothing is deleted.",
)
@click.option(
    "--threshold",
    type=click.IntRange(0, 32),
    default=6,
    show_default=True,
    help="--duplicates: the most hash bits (of 64) two near-duplicates differ in.",
)
@click.option(
    "--move-to",
    type=click.Path(path_type=Path, file_okay=False),
    help="--duplicates: move the extras (and their captions) into this folder, journaled.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only the summary line.")
@verbose_option
@json_option
@handle_errors
def captions_command(
    folder: Path,
    trigger: Trigger | None,
    ext: str,
    stats: bool,
    duplicates: bool,
    threshold: int,
    move_to: Path | None,
    quiet: bool,
    verbose: bool,
    as_json: bool,
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
      kohya-orch captions . --stats
      kohya-orch captions . --duplicates --move-to ../dupes

    FOLDER may be a project folder (DEST): every concept folder in DEST/img/ is checked.
    """
    from kohya_orchestrator.sdscripts.concepts import used_concepts

    img = folder / "img"
    concepts = [c.path for c in used_concepts(img)] if img.is_dir() else []
    if duplicates or move_to is not None:
        from kohya_orchestrator.cli.tag_table import run_duplicates

        run_duplicates(folder, threshold, move_to, as_json=as_json)
        return
    if stats:
        _stats(concepts or [folder], folder, trigger, ext, verbose=verbose, as_json=as_json)
        return
    if not concepts:
        run_check(folder, trigger, ext, quiet=quiet, verbose=verbose, as_json=as_json)
        return
    flagged = False
    docs: dict[str, Any] = {}
    for concept in concepts:
        name = concept.relative_to(folder).as_posix()
        if not as_json:
            click.echo(f"== {name}")
        report = run_check(
            concept, trigger, ext, quiet=quiet, verbose=verbose, as_json=as_json, stop=False
        )
        docs[name] = report.to_dict()
        flagged |= bool(report.flagged)
    if as_json:
        echo_json(docs)
    if flagged:
        raise SystemExit(1)


def _stats(
    folders: list[Path],
    base: Path,
    trigger: Trigger | None,
    ext: str,
    *,
    verbose: bool,
    as_json: bool,
) -> None:
    from kohya_orchestrator.cli.tag_table import render_stats
    from kohya_orchestrator.dataset.tagstats import tag_stats

    docs = {}
    for folder in folders:
        found = tag_stats(folder, trigger, ext)
        docs[folder.relative_to(base).as_posix() if folder != base else "."] = found.to_dict()
        if not as_json:
            if folder != base:
                click.echo(f"== {folder.relative_to(base).as_posix()}")
            click.echo(render_stats(found, limit=None if verbose else STATS_ROWS))
    if as_json:
        echo_json(docs["."] if list(docs) == ["."] else docs)


def run_check(
    folder: Path,
    trigger: Trigger | None,
    ext: str,
    *,
    quiet: bool,
    verbose: bool,
    as_json: bool,
    stop: bool = True,
) -> Any:
    """Check one folder and show it; with `stop`, exit 1 when anything is flagged."""
    from kohya_orchestrator.dataset.caption_check import check_captions

    with ExitStack() as stack:
        report = check_captions(
            folder, trigger, ext, iterate=iterate_with(stack, "Reading", quiet or as_json)
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


COMMANDS: list[click.Command] = [captions_command]
