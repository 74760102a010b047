"""`results` checks each LoRA file against the settings of the run that wrote it (its run
record), and says so when those differ from today's settings file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from results_factory import write_run, write_settings

from kohya_orchestrator.cli import cli
from kohya_orchestrator.results.scan import scan_results


def _record(dest: Path, stamp: str, loras: list[str], **settings: object) -> None:
    values = {
        "name": "yumoto_hakone",
        "model": "/models/ponyDiffusionV6XL_v6StartWithThisOne.safetensors",
        "epochs": 15,
        "save_every_n_epochs": 1,
        "network_dim": 16,
        "network_alpha": 8.0,
        "learning_rate": 2.5e-05,
        "unet_lr": 2.5e-05,
        "text_encoder_lr": 2.5e-05,
        **settings,
    }
    runs = dest / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    doc = {"kind": "train", "loras": loras, "settings": values, "exit_code": 0}
    (runs / f"{stamp}.json").write_text(json.dumps(doc))


def test_a_one_run_override_is_not_a_mismatch(tmp_path: Path) -> None:
    write_settings(tmp_path)
    files = write_run(tmp_path, epochs=2, dim=4, alpha=2.0)
    _record(
        tmp_path,
        "20260101-120000",
        [p.name for p in files],
        epochs=2,
        network_dim=4,
        network_alpha=2.0,
    )
    results = scan_results(tmp_path)
    assert [(f.level, f.message) for f in results.findings] == [
        (
            "note",
            "yumoto_hakone-000001.safetensors, yumoto_hakone.safetensors: written by run "
            "20260101-120000 with network_dim 4, network_alpha 2, epochs 2 (checked against "
            "those); the settings file now says network_dim 16, network_alpha 8, epochs 15",
        )
    ]


def test_files_are_still_checked_against_their_own_run(tmp_path: Path) -> None:
    write_settings(tmp_path)
    files = write_run(tmp_path, epochs=2, dim=4, alpha=2.0)
    # The record says rank 8, but the files say 4: a real mismatch, whatever the settings say.
    _record(
        tmp_path,
        "20260101-120000",
        [p.name for p in files],
        epochs=2,
        network_dim=8,
        network_alpha=2.0,
    )
    messages = [f.message for f in scan_results(tmp_path).findings if f.level == "warning"]
    assert messages == ["network_dim: the settings say 8, the files say 4 (all files)"]


def test_without_a_record_the_settings_file_is_the_reference(
    runner: CliRunner, tmp_path: Path
) -> None:
    write_settings(tmp_path)
    write_run(tmp_path, epochs=2, dim=4, alpha=2.0)
    result = runner.invoke(cli, ["results", str(tmp_path)])
    assert "  warning: network_dim: the settings say 16, the files say 4 (all files)\n" in (
        result.output
    )
