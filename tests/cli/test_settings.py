"""`kohya-orch settings`: the glossary; unknown options that name a setting say which one."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.schema import SPECS


def test_every_setting_is_listed_with_its_gui_field_and_profile_values(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["settings"], catch_exceptions=False)
    assert result.exit_code == 0
    out = result.output
    for spec in SPECS:
        assert f"\n  {spec.key}: " in out
    assert (
        "  attention: one of sdpa, xformers, mem_eff_attn; by profile: apple-silicon sdpa, "
        "cuda sdpa, cpu sdpa\n" not in out
    )  # the same under every profile: shown once
    assert (
        "  attention: one of sdpa, xformers, mem_eff_attn; default sdpa\n"
        "      GUI xformers; sd-scripts sdpa = true / xformers = true / mem_eff_attn = true; "
        "also written sdpa, cross_attention\n"
        "      sdpa everywhere; xformers is NVIDIA-only\n"
    ) in out
    assert (
        "  mixed_precision: one of no, fp16, bf16; by profile: apple-silicon no, cuda bf16, "
        "cpu no\n"
    ) in out
    assert (
        "  warmup_ratio: number; default 0.05\n"
        "      GUI lr_warmup; sd-scripts lr_warmup_steps; also written warmup\n"
    ) in out
    assert "\nMachine: set by the profile unless you uncomment a line\n" in out


def test_one_name_gui_field_or_sd_scripts_key(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["settings", "--instance-prompt"[2:]])
    assert result.output == (
        "  trigger: text; required\n"
        "      GUI instance_prompt; no sd-scripts key\n"
        "      the trigger captions start with; comma-separated tokens set keep_tokens\n"
    )
    result = runner.invoke(cli, ["settings", "max_train_epochs", "--json"])
    [entry] = json.loads(result.output)
    assert (entry["key"], entry["gui"], entry["sd_scripts"], entry["default"]) == (
        "epochs",
        "epoch",
        ["max_train_epochs"],
        15,
    )
    assert entry["by_profile"] == {"apple-silicon": 15, "cuda": 15, "cpu": 15}
    result = runner.invoke(cli, ["settings", "sdpaa"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: No setting, kohya_ss GUI field or sd-scripts key is called 'sdpaa'. "
        "Close: sdpa.\n  hint: `kohya-orch settings` lists them all.\n"
    )


def test_unknown_options_that_name_a_setting_say_which(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["prepare", "x", "--instance-prompt", "y"])
    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: No such option: --instance-prompt. The kohya_ss GUI's 'instance_prompt' is "
        "kohya-orch's setting 'trigger': use --trigger (kohya-orch settings instance_prompt).\n"
    )
    result = runner.invoke(cli, ["plan", ".", "--epoch", "3"])
    assert result.stderr.endswith(
        "Error: No such option: --epoch. The kohya_ss GUI's 'epoch' is kohya-orch's setting "
        "'epochs': use --set epochs=... (kohya-orch settings epoch).\n"
    )
    result = runner.invoke(cli, ["plan", ".", "--epochz", "3"])
    assert result.stderr.endswith("Error: No such option '--epochz'.\n")
