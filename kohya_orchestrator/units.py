"""Numbers as people write and read them: the decimal comma, and sizes in binary units."""

from __future__ import annotations

import re
from typing import Any

# `0,000025`: the decimal comma the user writes (the comma separates nothing else here).
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def decimal_comma(value: Any) -> float | None:
    """`"0,000025"` -> 2.5e-05: the one place a decimal comma is read; None for other values.

    The settings file, `--set`, [sd_scripts] and the lint's hints all come here; the
    setting's kind (or the sd-scripts option's type) decides whether a number is wanted.
    """
    if isinstance(value, str) and _DECIMAL_COMMA.match(value.strip()):
        return float(value.strip().replace(",", "."))
    return None


def human_size(size: int) -> str:
    """Bytes as people read them: 512 B, 18.4 MiB, 6.5 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
