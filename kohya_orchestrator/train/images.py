"""`plan`'s words about images sd-scripts upscales, naming the files (the ones it would
misread: dataset/imagecheck.misread_warnings)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# Files named in one warning before "(and N more)".
SHOWN = 5


def few(names: Sequence[str], limit: int = SHOWN) -> str:
    """The first names, then "(and N more)"."""
    shown = ", ".join(names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def upscaled_warning(small: Sequence[tuple[Path, tuple[int, int], tuple[int, int]]]) -> list[str]:
    """Images narrower or lower than the bucket they go to: sd-scripts upscales them.

    `small` holds (image, its size, its bucket)."""
    if not small:
        return []
    names = [f"{p.name} {w}x{h} -> {bw}x{bh}" for p, (w, h), (bw, bh) in small]
    n = len(small)
    return [
        f"{n} image{'s are' if n != 1 else ' is'} smaller than {'their' if n != 1 else 'its'} "
        f"bucket and will be upscaled (soft detail): {few(names)}"
    ]
