"""Start-up time: `kohya-orch --help` next to a bare `python -c pass` (target: under 2x)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RUNS = 9


def _command() -> list[str]:
    # The installed console script when there is one (what the user types), else -m.
    script = Path(sys.executable).with_name("kohya-orch")
    return (
        [str(script), "--help"]
        if script.exists()
        else [sys.executable, "-m", "kohya_orchestrator", "--help"]
    )


def _median_seconds(argv: list[str]) -> float:
    subprocess.run(argv, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run() -> list[dict[str, Any]]:
    base = _median_seconds([sys.executable, "-c", "pass"])
    click_time = _median_seconds([sys.executable, "-c", "import click"])
    help_time = _median_seconds(_command())
    ratio = help_time / base
    return [
        {
            "name": "python -c pass",
            "value": base * 1000,
            "unit": "ms",
            "target": "",
            "ok": None,
            "note": f"median of {RUNS}",
        },
        {
            "name": "python -c 'import click'",
            "value": click_time * 1000,
            "unit": "ms",
            "target": "",
            "ok": None,
            "note": f"{click_time / base:.2f}x python -c pass: the floor for any Click CLI",
        },
        {
            "name": "kohya-orch --help",
            "value": help_time * 1000,
            "unit": "ms",
            "target": "< 2x python -c pass",
            "ok": ratio < 2,
            "note": f"{ratio:.2f}x python -c pass, median of {RUNS}",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
