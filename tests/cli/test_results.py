"""The results, xyz, inspect, grid and export commands: exact output and exit codes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from results_factory import sample_name, write_lora, write_run, write_sample, write_settings

from kohya_orchestrator.cli import cli
from kohya_orchestrator.sdscripts.safetensors_header import write_header_only
from kohya_orchestrator.units import human_size

NAME = "yumoto_hakone"
REMINDER = (
    "  reminder: Prompt S/R replaces the first value, yumoto_hakone-000001, everywhere it "
    "appears in the prompt and negative prompt: put <lora:yumoto_hakone-000001:1> in the "
    "prompt exactly as shown, and nothing else that contains that text.\n"
)
CLIP_HINT = (
    "  hint:     generate with Clip skip 2 in Forge (Settings > Stable Diffusion), as "
    "anime-style models such as Pony expect; the training settings say clip_skip 2\n"
)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The table shows local times: pin the zone so the text is exact."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_results(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path, epochs=3)
    write_settings(tmp_path, epochs=3, network_dim=32)
    result = runner.invoke(cli, ["results", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == (
        f"yumoto_hakone: 3 LoRA file(s) in {tmp_path / 'model'}\n"
        "  epoch   steps      loss        size  written           file\n"
        "      1      42         -     2.2 KiB  2025-11-23 22:10  "
        "yumoto_hakone-000001.safetensors\n"
        "      2      84         -     2.2 KiB  2025-11-23 22:20  "
        "yumoto_hakone-000002.safetensors\n"
        "      3     126         -     2.2 KiB  2025-11-23 22:30  yumoto_hakone.safetensors\n"
        "\n"
        "Checks:\n"
        "  warning: network_dim: the settings say 32, the files say 16 (all files)\n"
        "\n"
        'Forge X/Y/Z plot, X type "Prompt S/R" (from the files that exist):\n'
        "  values:   yumoto_hakone-000001,yumoto_hakone-000002,yumoto_hakone\n"
        "  LoRA tag: <lora:yumoto_hakone-000001:1>\n" + REMINDER + CLIP_HINT
    )


def test_results_clean_and_json(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path, epochs=2)
    write_settings(tmp_path, epochs=2)
    result = runner.invoke(cli, ["results", str(tmp_path)], catch_exceptions=False)
    assert "\nChecks: no problems found (files agree with the settings).\n" in result.output
    result = runner.invoke(cli, ["results", str(tmp_path), "--json"], catch_exceptions=False)
    import json

    doc = json.loads(result.output)
    assert [f["file"] for f in doc["files"]] == [
        f"{NAME}-000001.safetensors",
        f"{NAME}.safetensors",
    ]
    assert doc["files"][1]["epoch"] == 2 and doc["files"][1]["final"] is True
    assert doc["xyz"]["sr_value"] == "yumoto_hakone-000001,yumoto_hakone"
    assert doc["findings"] == []


def test_results_before_training(runner: CliRunner, tmp_path: Path) -> None:
    write_settings(tmp_path, epochs=15, save_every_n_epochs=5)
    result = runner.invoke(cli, ["results", str(tmp_path)], catch_exceptions=False)
    assert result.output == (
        f"No LoRA files in {tmp_path / 'model'} yet.\n"
        "\n"
        "Checks:\n"
        f"  note: no LoRA files in {tmp_path / 'model'} yet\n"
        "\n"
        'Forge X/Y/Z plot, X type "Prompt S/R" (planned from the settings (no files yet)):\n'
        "  values:   yumoto_hakone-000005,yumoto_hakone-000010,yumoto_hakone\n"
        "  LoRA tag: <lora:yumoto_hakone-000005:1>\n"
        "  reminder: Prompt S/R replaces the first value, yumoto_hakone-000005, everywhere it "
        "appears in the prompt and negative prompt: put <lora:yumoto_hakone-000005:1> in the "
        "prompt exactly as shown, and nothing else that contains that text.\n" + CLIP_HINT
    )


def test_results_missing_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["results", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert f"Directory '{tmp_path / 'nope'}' does not exist." in result.output


def test_xyz_planned(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["xyz", NAME, "--epochs", "15", "--save-every", "2"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert result.output == (
        'Forge X/Y/Z plot, X type "Prompt S/R" (the files such a run writes):\n'
        "  values:   yumoto_hakone-000002,yumoto_hakone-000004,yumoto_hakone-000006,"
        "yumoto_hakone-000008,yumoto_hakone-000010,yumoto_hakone-000012,yumoto_hakone-000014,"
        "yumoto_hakone\n"
        "  LoRA tag: <lora:yumoto_hakone-000002:1>\n"
        "  reminder: Prompt S/R replaces the first value, yumoto_hakone-000002, everywhere it "
        "appears in the prompt and negative prompt: put <lora:yumoto_hakone-000002:1> in the "
        "prompt exactly as shown, and nothing else that contains that text.\n"
    )


def test_xyz_from_dest_thinned(runner: CliRunner, tmp_path: Path) -> None:
    write_run(tmp_path)
    result = runner.invoke(
        cli,
        ["xyz", str(tmp_path), "--every", "5", "--weight", "0.7", "--json"],
        catch_exceptions=False,
    )
    import json

    doc = json.loads(result.output)
    assert doc["values"] == [f"{NAME}-000005", f"{NAME}-000010", NAME]
    assert doc["lora_tag"] == "<lora:yumoto_hakone-000005:0.7>"
    assert doc["source"] == "files"


def test_xyz_errors(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["xyz", "yumoto"])
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for TARGET: 'yumoto' is not a folder. Give a project folder, or a "
        "LoRA name with --epochs: kohya-orch xyz yumoto --epochs 15\n"
    )
    result = runner.invoke(cli, ["xyz", "a/b", "--epochs", "3"])
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for TARGET: Not a LoRA output name: 'a/b'.\n"
        "  hint: Give the output name alone, e.g. yumoto_hakone (no folder, no extension).\n"
    )
    result = runner.invoke(cli, ["xyz", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: No LoRA files in {tmp_path / 'model'} and no settings to plan from.\n"
        "  hint: Give a project folder made by `kohya-orch prepare`, or a name: "
        "kohya-orch xyz NAME --epochs 15\n"
    )
    result = runner.invoke(cli, ["xyz", NAME, "--epochs", "15", "--every", "0"])
    assert result.exit_code == 2
    # Without --epochs the files or settings say how often the run saves: not silently ignored.
    write_run(tmp_path, epochs=2)
    result = runner.invoke(cli, ["xyz", str(tmp_path), "--save-every", "5"])
    assert result.exit_code == 2
    assert result.output.endswith(
        "Error: Invalid value for --save-every: --save-every only applies with --epochs; for a "
        "project folder use --every\n"
    )


def test_inspect_lora(runner: CliRunner, tmp_path: Path) -> None:
    from results_factory import lora_metadata

    path = write_lora(tmp_path / f"{NAME}.safetensors", lora_metadata(NAME, 15), rank=16)
    result = runner.invoke(cli, ["inspect", str(path), "--tags", "3"], catch_exceptions=False)
    assert result.output == (
        "yumoto_hakone.safetensors: LoRA for SDXL (3.0 KiB, 6 tensors)\n"
        "  output name:        yumoto_hakone\n"
        "  network:            networks.lora\n"
        "  dim / alpha:        16 / 8\n"
        "  modules:            2\n"
        "  base model version: sdxl_base_v1-0\n"
        "  epoch:              15 of 15\n"
        "  steps:              630 of 630 (42 per epoch)\n"
        "  learning rate:      2.5e-05\n"
        "  U-Net LR:           2.5e-05\n"
        "  text encoder LR:    2.5e-05\n"
        "  optimizer:          torch.optim.adamw.AdamW\n"
        "  scheduler:          constant_with_warmup (warmup 31 steps)\n"
        "  base model:         ponyDiffusionV6XL_v6StartWithThisOne.safetensors\n"
        "  base model hash:    67ab2fd8ec439a89b3fedb15cc65f54336af163c7eb5e4f2acc98f090a29b0b3 "
        "(AutoV2 67AB2FD8EC)\n"
        "  resolution:         (768, 768)\n"
        "  batch size:         4\n"
        "  training images:    168\n"
        "  mixed precision:    no\n"
        "  clip skip:          2\n"
        "  seed:               42\n"
        "  started:            2025-11-23 22:00:00 UTC\n"
        "  finished:           2025-11-23 22:15:00 UTC\n"
        "  dataset folders:\n"
        "    7_yumoto_hakone: 24 images x 7 repeats\n"
        "  most frequent tags:\n"
        "    glasses (24), yumoto_hakone (24), 1boy (22)\n"
    )


def test_inspect_checkpoint_and_errors(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "pony.safetensors"
    keys = ["conditioner.embedders.0.transformer.x", "model.diffusion_model.label_emb.0.0.weight"]
    write_header_only(path, {key: {"dtype": "F16", "shape": [2]} for key in keys}, {})
    result = runner.invoke(cli, ["inspect", str(path)], catch_exceptions=False)
    assert result.output == (
        f"pony.safetensors: SDXL checkpoint ({human_size(path.stat().st_size)}, 2 tensors)\n"
        "  family:     SDXL\n"
        "  train with: sdxl_train_network.py\n"
    )
    result = runner.invoke(cli, ["inspect", str(tmp_path / "missing.safetensors")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Model file not found: {tmp_path / 'missing.safetensors'}\n"
        "  hint: Check the path.\n"
    )


def test_grid(runner: CliRunner, tmp_path: Path) -> None:
    for epoch in (1, 2):
        for index in (0, 1):
            if (epoch, index) != (2, 1):
                write_sample(tmp_path, sample_name(NAME, epoch, index), (10, 20, 30))
    result = runner.invoke(cli, ["grid", str(tmp_path)], catch_exceptions=False)
    assert result.output == (
        f"Wrote {tmp_path / 'compare' / 'grid.png'}: 2 epoch(s) x 2 prompt(s), 704x552 px, "
        "1 missing cell(s)\n"
    )
    result = runner.invoke(cli, ["grid", str(tmp_path), "--out", str(tmp_path / "g.jpg")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path / 'g.jpg'}: the grid is a PNG; give a file name ending in .png.\n"
    )


def test_export(runner: CliRunner, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    write_run(dest, epochs=2)
    lora_dir = tmp_path / "Lora"
    lora_dir.mkdir()
    args = ["export", str(dest), "--to", str(lora_dir)]
    result = runner.invoke(cli, [*args, "--dry-run"], catch_exceptions=False)
    assert result.output == (
        f"  would copy: {NAME}-000001.safetensors\n"
        f"  would copy: {NAME}.safetensors\n"
        f"Dry run: 2 to copy in {lora_dir}\n"
    )
    assert list(lora_dir.iterdir()) == []
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.output == (
        f"  copied: {NAME}-000001.safetensors\n  copied: {NAME}.safetensors\n"
        f"2 copied in {lora_dir}\n"
    )
    (lora_dir / f"{NAME}.safetensors").write_bytes(b"different")
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Not exported: 1 file(s) in {lora_dir} have the same name but different "
        f"content: {NAME}.safetensors. Nothing was copied.\n"
        "  hint: Use --force to replace them, or rename the old files first.\n"
    )
    result = runner.invoke(cli, [*args, "--force"], catch_exceptions=False)
    assert result.output == (
        f"  skipped: {NAME}-000001.safetensors (already there, identical)\n"
        f"  replaced: {NAME}.safetensors (it was different)\n"
        f"1 replaced, 1 skipped in {lora_dir}\n"
    )


def test_export_name_ending_in_six_digits(runner: CliRunner, tmp_path: Path) -> None:
    # `hakone-202611` is the final file of the run, not epoch 202611 of a run named `hakone`.
    dest = tmp_path / "dest"
    write_run(dest, "hakone-202611", epochs=2)
    write_settings(dest, name="hakone-202611", epochs=2)
    lora_dir = tmp_path / "Lora"
    lora_dir.mkdir()
    result = runner.invoke(
        cli, ["export", str(dest), "--to", str(lora_dir), "--dry-run"], catch_exceptions=False
    )
    assert result.output == (
        "  would copy: hakone-202611-000001.safetensors\n"
        "  would copy: hakone-202611.safetensors\n"
        f"Dry run: 2 to copy in {lora_dir}\n"
    )


def test_commands_have_examples(runner: CliRunner) -> None:
    for name in ("results", "xyz", "inspect", "grid", "export"):
        result = runner.invoke(cli, [name, "--help"], catch_exceptions=False)
        assert result.exit_code == 0
        assert "  Examples:\n    kohya-orch " + name in result.output
