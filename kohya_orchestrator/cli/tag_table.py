"""The `captions --stats` table: tag frequencies and the trigger's facts, as text."""

from __future__ import annotations

from typing import Any

from kohya_orchestrator.cli.common import count


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
