"""Raw [sd_scripts] keys that shadow a setting are refused; the file's raw keys are dotted, so
lines appended to it land at the top level; errors name where a value came from."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from projectfactory import make_project

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.settings import load_settings, resolve_settings
from kohya_orchestrator.config.settings_file import initial_settings_text
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.layout import Layout

BASE: dict[str, Any] = {"name": "hakone", "trigger": "hakone", "images": "/i", "model": "/m"}


def _problems(doc: dict[str, Any], overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(SettingsError) as err:
        resolve_settings({**BASE, **doc}, overrides, source="kohya-orch.toml")
    return list(err.value.problems)


def test_raw_keys_that_are_settings_are_refused_with_the_setting_to_use() -> None:
    raw = {"network_dim": 32, "max_train_epochs": 20, "epochs": 20, "sdpa": True}
    assert _problems({"sd_scripts": raw}) == [
        "kohya-orch.toml: [sd_scripts] network_dim: 'network_dim' is a kohya-orch setting, not "
        "an sd-scripts key; set `network_dim = 32` at the top level instead (above any [table] "
        "line)",
        "kohya-orch.toml: [sd_scripts] max_train_epochs: 'max_train_epochs' is what the setting "
        "'epochs' renders to; set `epochs = 20` at the top level instead (above any [table] "
        "line)",
        "kohya-orch.toml: [sd_scripts] epochs: 'epochs' is a kohya-orch setting, not an "
        "sd-scripts key; set `epochs = 20` at the top level instead (above any [table] line)",
        "kohya-orch.toml: [sd_scripts] sdpa: 'sdpa' is what the setting 'attention' renders to; "
        'set `attention = "sdpa"` at the top level instead (above any [table] line)',
    ]
    assert _problems({}, ("sd_scripts.train_batch_size=2", "sd_scripts.lr_warmup_steps=10")) == [
        "--set: sd_scripts.train_batch_size: 'train_batch_size' is what the setting "
        "'batch_size' renders to; use --set batch_size=2 instead",
        "--set: sd_scripts.lr_warmup_steps: 'lr_warmup_steps' is what the setting "
        "'warmup_ratio' renders to; use --set warmup_ratio=... instead",
    ]


def test_sdpa_as_a_setting_name_says_which_setting_and_value() -> None:
    assert _problems({}, ("sdpa=true",)) == [
        "--set: unknown setting 'sdpa' (did you mean attention = \"sdpa\"?)"
    ]


def test_appended_lines_land_at_the_top_level(tmp_path: Path) -> None:
    text = initial_settings_text(**BASE, sd_scripts={"max_grad_norm": 1.0})
    assert "[sd_scripts]" not in text
    assert text.endswith("sd_scripts.max_grad_norm = 1.0\n")
    (tmp_path / "kohya-orch.toml").write_text(text + "network_dim = 32\nepochs = 20\n")
    s = load_settings(Layout(tmp_path))
    assert (s.network_dim, s.network_alpha, s.epochs) == (32, 16.0, 20)
    assert s.sd_scripts == {"max_grad_norm": 1.0}
    assert "network_alpha = 16: rank 32 / 2." in s.notes
    first = text.split("\n").index(next(ln for ln in text.split("\n") if ln.startswith("epochs")))
    last = len(text.split("\n")) + 1
    assert s.notes[1] == (
        f"epochs is set twice in kohya-orch.toml (lines {first + 1} and {last}): the later "
        "line wins; delete the other to silence this note."
    )
    assert tomllib.loads(text)["sd_scripts"] == {"max_grad_norm": 1.0}


def test_errors_name_their_real_source(runner: CliRunner, tmp_path: Path) -> None:
    dest = make_project(tmp_path)
    result = runner.invoke(cli, ["config", str(dest), "--set", "attention=xformers"])
    assert result.exit_code == 1
    assert "    (setting 'attention', from --set)\n" in result.stderr
    result = runner.invoke(cli, ["config", str(dest), "--set", "sd_scripts.max_grad_nrom=1.0"])
    assert result.exit_code == 1
    assert "    (from --set sd_scripts.max_grad_nrom)\n" in result.stderr
    result = runner.invoke(cli, ["config", str(dest), "--set", "profile=cpu", "--dry-run"])
    assert result.exit_code == 0, result.output
    settings = dest / "kohya-orch.toml"
    settings.write_text(settings.read_text() + 'attention = "xformers"\n')
    result = runner.invoke(cli, ["config", str(dest)])
    assert "    (setting 'attention', in kohya-orch.toml)\n" in result.stderr
    settings.write_text(settings.read_text() + 'profile = "cuda"\nsd_scripts.full_fp16 = true\n')
    result = runner.invoke(cli, ["config", str(dest), "--set", "profile=cpu"])
    assert "    (from sd_scripts.full_fp16 in kohya-orch.toml)\n" in result.stderr
