"""`captions --stats` and `captions --duplicates`: the tag frequency table and the groups of
near-identical images, as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kohya_orchestrator.cli.common import count, echo_json, warn


def render_stats(stats: Any, *, limit: int | None) -> str:
    """The frequency table and the trigger's facts, as `captions --stats` prints them."""
    rows = stats.rows if limit is None else stats.rows[:limit]
    width = max([3, *(len(r.tag) for r in rows)])
    lines = [f"{'TAG':<{width}}  IMAGES  SHARE"]
    lines += [f"{r.tag:<{width}}  {r.images:>6}  {r.share:>5.0%}" for r in rows]
    if limit is not None and len(stats.rows) > limit:
        lines.append(f"... and {len(stats.rows) - limit} more tags (--verbose shows all)")
    lines.append("")
    lines.append(f"{count(stats.captions, 'caption')}, {count(len(stats.rows), 'distinct tag')}.")
    if stats.uncaptioned:
        lines.append(f"No caption file: {count(len(stats.uncaptioned), 'image')}.")
    if stats.trigger is None:
        lines.append(
            "Trigger: unknown (no leading tag is shared by most captions; give --trigger)."
        )
    else:
        pos = stats.trigger_position
        lines.append(
            f"Trigger '{stats.trigger.text}': first in {pos['first']}, later in {pos['later']}, "
            f"missing in {pos['missing']}."
        )
        only = stats.trigger_only
        if only:
            shown = ", ".join(only[:5]) + (f" (and {len(only) - 5} more)" if len(only) > 5 else "")
            lines.append(f"The trigger alone: {count(len(only), 'caption')}: {shown}.")
    return "\n".join(lines)


def run_duplicates(folder: Path, threshold: int, move_to: Path | None, *, as_json: bool) -> None:
    """List the near-duplicate groups; with `move_to`, move the extras (under the lock)."""
    from kohya_orchestrator.dataset import duplicates as dp
    from kohya_orchestrator.dataset.scan import require_folder
    from kohya_orchestrator.locking import folder_lock

    require_folder(folder)
    dp.require_imagehash()
    if move_to is not None:
        with folder_lock(folder, "captions --move-to"):
            done = dp.finish_pending(folder)
            if done and not as_json:
                click.echo(f"Finished an interrupted move: {count(done, 'file')} moved.")
            groups, unreadable = dp.find_duplicates(folder, threshold)
            moves = dp.plan_moves(folder, groups, move_to)
            moved = dp.move_extras(folder, moves, move_to) if moves else 0
    else:
        groups, unreadable = dp.find_duplicates(folder, threshold)
    extras = sum(len(g.extras) for g in groups)
    if as_json:
        echo_json(
            {
                "folder": str(folder),
                "threshold": threshold,
                "groups": [
                    {
                        "keep": str(g.keep),
                        "extras": [{"image": str(p), "distance": d} for p, d in g.extras],
                    }
                    for g in groups
                ],
                "moved_to": str(move_to) if move_to is not None else None,
                "unreadable": unreadable,
            }
        )
        return
    click.echo(
        f"Near-duplicates in {folder} (perceptual hash, at most {threshold} of 64 bits apart):"
    )
    for i, group in enumerate(groups, 1):
        others = ", ".join(f"{p.name} (distance {d})" for p, d in group.extras)
        click.echo(f"  {i}. keep {group.keep.name}; {others}")
    for line in unreadable:
        warn(f"not hashed: {line}")
    tail = (
        f" Moved the extras and their sidecars ({count(moved, 'file')}) to {move_to}."
        if move_to is not None
        else " Nothing was deleted; --move-to FOLDER moves the extras."
    )
    click.echo(f"{count(len(groups), 'group')}, {count(extras, 'extra')}.{tail if groups else ''}")
