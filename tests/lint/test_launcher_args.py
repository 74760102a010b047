"""Tests for launcher_args: `validate FILE --arg KEY=VALUE`, the keys a launcher adds."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.errors import ConfigError
from kohya_orchestrator.lint.launcher_args import parse_launcher_args
from kohya_orchestrator.lint.linter import lint_file


def test_pairs_and_switches() -> None:
    assert parse_launcher_args(["dataset_config=/d.toml", "--xformers", "a=b=c"]) == {
        "dataset_config": "/d.toml",
        "xformers": True,
        "a": "b=c",
    }
    with pytest.raises(ConfigError) as info:
        parse_launcher_args(["=1"])
    assert info.value.message == "--arg '=1' is not KEY=VALUE"


def test_the_command_line_completes_the_config(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("yh, glasses\n", encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text("sample_every_n_epochs = 1\nmax_train_epochs = 2\n", encoding="utf-8")
    alone = lint_file(path, check_files=False)
    assert "sample_prompts" in [p.key for p in alone.errors]
    report = lint_file(
        path,
        check_files=False,
        launcher_args={"sample_prompts": str(prompts), "max_train_epochs": "15", "xformers": True},
    )
    assert "sample_prompts" not in [p.key for p in report.errors]
    assert "max_train_epochs" not in [p.key for p in report.errors + report.warnings]


def test_what_argparse_refuses_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("max_train_epochs = 2\n", encoding="utf-8")
    report = lint_file(
        path,
        script="train_network.py",
        check_files=False,
        launcher_args={"max_train_epoch": "3", "train_batch_size": "two"},
    )
    assert [p.message for p in report.errors[:2]] == [
        "--arg max_train_epoch: train_network.py has no option --max_train_epoch, so it stops "
        "with 'unrecognized arguments'",
        "--arg train_batch_size=two: argparse refuses it (not int)",
    ]


def test_cli_arg_option(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("max_train_epochs = 2\n", encoding="utf-8")
    runner = CliRunner()
    bad = runner.invoke(cli, ["validate", str(path), "--arg", "=x"])
    assert bad.exit_code == 2
    assert "--arg '=x' is not KEY=VALUE" in bad.output
    result = runner.invoke(cli, ["validate", str(path), "--arg", "dataset_config=/nope.toml"])
    assert "error: 'dataset_config' = \"/nope.toml\" does not exist" in result.output.splitlines()
