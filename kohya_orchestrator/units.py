"""Sizes as people read them: one formatter for every command (binary units, as `ls -h`)."""

from __future__ import annotations


def human_size(size: int) -> str:
    """Bytes as people read them: 512 B, 18.4 MiB, 6.5 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
