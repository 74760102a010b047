"""The command group itself: help, version, aliases."""

from __future__ import annotations

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
