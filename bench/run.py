"""`make bench`: run every bench/bench_*.py, print one table, write bench/RESULTS.md.

Each benchmark module defines `run() -> list[Row]` where a Row is a dict with keys
`name`, `value` (a number), `unit`, `target` (text, may be empty), `ok` (bool or None),
and optionally `note`. Each figure should be the median of several runs.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
            mem = f", {kb / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    py = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cpus} cores{mem}, Python {py}"


def main() -> None:
    only = sys.argv[1:]
    rows: list[dict[str, Any]] = []
    for path in sorted(HERE.glob("bench_*.py")):
        if only and not any(o in path.stem for o in only):
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        rows.extend(_load(path).run())
    header = "| benchmark | figure | target | met |\n|---|---|---|---|"
    lines = [header]
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r.get("ok")]
        fig = f"{r['value']:.4g} {r['unit']}"
        if r.get("note"):
            fig += f" ({r['note']})"
        lines.append(f"| {r['name']} | {fig} | {r.get('target', '')} | {met} |")
    table = "\n".join(lines)
    print(table)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# Benchmark results\n\nMachine: {_machine()}; run {stamp} by `make bench`.\n\n{table}\n"
    )
    if not only:
        (HERE / "RESULTS.md").write_text(text, encoding="utf-8")
        print(f"\nwritten to {HERE / 'RESULTS.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
