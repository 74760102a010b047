"""The `kohya-orch` entry point: `--help` is answered from a cached page, anything else by Click.

Importing Click alone costs about twice a bare Python start, so the top-level help page is
kept rendered in `cli/help.txt` (a test checks that it equals what Click renders) and
printed without importing Click when the terminal is at least Click's 80 columns wide.
"""

from __future__ import annotations

import os
import sys

_HELP_ARGS = (["--help"], ["-h"])
_CLICK_MAX_WIDTH = 80


def _columns() -> int:
    # What shutil.get_terminal_size (which Click uses) reports, without importing shutil.
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return _CLICK_MAX_WIDTH


def _cached_help() -> str | None:
    if _columns() < _CLICK_MAX_WIDTH:
        return None
    path = os.path.join(os.path.dirname(__file__), "cli", "help.txt")
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def main() -> None:
    """Run `kohya-orch`."""
    if sys.argv[1:] in _HELP_ARGS:
        text = _cached_help()
        if text is not None:
            sys.stdout.write(text)
            return
    from kohya_orchestrator.cli import main as click_main

    click_main()
