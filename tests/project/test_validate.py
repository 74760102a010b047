"""Tests for project/validate.py: `validate DEST` before `config` judges the config it would
render, as `plan` does, not "config.toml does not exist"."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kohya_orchestrator.cli import cli

from .test_render import make_project


def test_validate_dest_before_config_checks_what_it_would_render(tmp_path: Path) -> None:
    dest = make_project(tmp_path, "sdxl")
    assert not (dest / "config.toml").exists()
    result = CliRunner().invoke(cli, ["validate", str(dest)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(f"{dest / 'config.toml'}: checked against ")
    assert "does not exist" not in result.output
    assert not (dest / "config.toml").exists()  # nothing written
