"""The command group itself: help, version, aliases."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from kohya_orchestrator.cli import cli


def test_help_lists_workflow(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "From a folder of images to a grid of finished epochs" in result.output


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"], catch_exceptions=False)
    assert result.output == "kohya-orch, version 0.1.0\n"


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from kohya_orchestrator.cli import cli; "
        "heavy = [m for m in ('PIL', 'safetensors', 'numpy', 'torch', 'jinja2', 'piexif') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cached_help_page_matches_click() -> None:
    """`kohya-orch --help` prints cli/help.txt without Click; it must equal Click's page.

    After changing a command's docstring, regenerate it with:
        .venv/bin/python -c "from kohya_orchestrator.cli import render_help, HELP_CACHE; \
HELP_CACHE.write_text(render_help())"
    """
    from kohya_orchestrator.cli import HELP_CACHE, render_help

    assert HELP_CACHE.read_text(encoding="utf-8") == render_help()


def test_entry_help_fast_path_equals_click_output() -> None:
    env = {**os.environ, "COLUMNS": "100"}
    fast = subprocess.run(
        [sys.executable, "-m", "kohya_orchestrator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    slow = subprocess.run(
        [sys.executable, "-c", "from kohya_orchestrator.cli import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert fast.stdout == slow.stdout
    assert fast.stdout.startswith("Usage: kohya-orch [OPTIONS] COMMAND [ARGS]...")


def test_entry_help_imports_no_click() -> None:
    code = (
        "import sys; sys.argv = ['kohya-orch', '--help']; "
        "from kohya_orchestrator._entry import main; main(); "
        "print('click' in sys.modules, file=sys.stderr)"
    )
    env = {**os.environ, "COLUMNS": "100"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stderr.strip() == "False"
