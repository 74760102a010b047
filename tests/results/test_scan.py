"""results.py: the run's LoRA files in epoch order and the checks against the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_factory import lora_metadata, write_lora, write_run, write_settings

from kohya_orchestrator.errors import ResultsError
from kohya_orchestrator.results.model import Finding, RunSettings, split_stem
from kohya_orchestrator.results.scan import (
    scan_results,
)

NAME = "yumoto_hakone"


def messages(findings: list[Finding]) -> list[str]:
    return [f"{f.level}: {f.message}" for f in findings]


def test_split_stem() -> None:
    assert split_stem("yumoto_hakone-000003") == ("yumoto_hakone", 3)
    assert split_stem("yumoto_hakone") == ("yumoto_hakone", None)
    assert split_stem("a-b-000012") == ("a-b", 12)
    assert split_stem("x-12") == ("x-12", None)


def test_split_stem_reads_against_the_known_name() -> None:
    assert split_stem("hakone-202611", "hakone-202611") == ("hakone-202611", None)
    assert split_stem("hakone-202611-000002", "hakone-202611") == ("hakone-202611", 2)
    assert split_stem("other-000004", "hakone-202611") == ("other", 4)
    # Without the name, six trailing digits can only be guessed to be an epoch.
    assert split_stem("hakone-202611") == ("hakone", 202611)


def test_name_ending_in_six_digits_keeps_its_final_file(tmp_path: Path) -> None:
    write_run(tmp_path, "hakone-202611", epochs=3)
    write_settings(tmp_path, name="hakone-202611", epochs=3)
    res = scan_results(tmp_path)
    assert res.name == "hakone-202611"
    assert res.stems == ["hakone-202611-000001", "hakone-202611-000002", "hakone-202611"]
    assert [f.shown_epoch for f in res.files] == [1, 2, 3]
    assert res.files[-1].is_final
    assert res.others == []
    assert res.findings == []


def test_name_ending_in_six_digits_from_metadata_without_settings(tmp_path: Path) -> None:
    write_run(tmp_path, "hakone-202611", epochs=3)
    res = scan_results(tmp_path)
    assert res.name == "hakone-202611"
    assert res.stems == ["hakone-202611-000001", "hakone-202611-000002", "hakone-202611"]
    assert res.files[-1].is_final
    assert messages(res.findings) == [
        f"note: settings not compared: no kohya-orch.toml in {tmp_path}"
    ]


def test_renamed_files_fall_back_to_the_file_names(tmp_path: Path) -> None:
    # ss_output_name says "old" but no file is named so: the names are guessed from the files.
    for epoch, stem in ((1, "new-000001"), (2, "new")):
        write_lora(
            tmp_path / "model" / f"{stem}.safetensors", lora_metadata("old", epoch, epochs=2)
        )
    res = scan_results(tmp_path)
    assert res.name == "new"
    assert res.stems == ["new-000001", "new"]


def test_table_in_epoch_order_final_last(tmp_path: Path) -> None:
    write_run(tmp_path)
    write_settings(tmp_path)
    res = scan_results(tmp_path)
    assert res.name == NAME
    assert res.stems == [f"{NAME}-{e:06d}" for e in range(1, 15)] + [NAME]
    assert [f.shown_epoch for f in res.files] == list(range(1, 16))
    assert [f.steps for f in res.files] == [42 * e for e in range(1, 16)]
    assert [f.mtime for f in res.files] == [1763935200.0 + 600 * e for e in range(1, 16)]
    assert all(f.size == f.path.stat().st_size for f in res.files)
    assert res.files[-1].is_final and not res.files[0].is_final
    assert res.findings == []


def test_clean_run_without_settings_notes_the_skip(tmp_path: Path) -> None:
    write_run(tmp_path, save_every=5)
    res = scan_results(tmp_path)
    assert res.stems == [f"{NAME}-000005", f"{NAME}-000010", NAME]
    assert messages(res.findings) == [
        f"note: settings not compared: no kohya-orch.toml in {tmp_path}"
    ]


def test_settings_mismatches(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=10)
    write_settings(
        tmp_path,
        network_dim=32,
        network_alpha=16.0,
        learning_rate=1e-4,
        unet_lr=1e-4,
        text_encoder_lr=2.5e-05,
        model="/models/animagineXL.safetensors",
    )
    res = scan_results(tmp_path)
    assert messages(res.findings) == [
        "warning: network_dim: the settings say 32, the files say 16 (all files)",
        "warning: network_alpha: the settings say 16.0, the files say 8.0 (all files)",
        "warning: epochs: the settings say 15, the files say 10 (all files)",
        "warning: learning_rate: the settings say 0.0001, the files say 2.5e-05 (all files)",
        "warning: unet_lr: the settings say 0.0001, the files say 2.5e-05 (all files)",
        "warning: model: the settings say '/models/animagineXL.safetensors', the files say "
        "ponyDiffusionV6XL_v6StartWithThisOne.safetensors (all files)",
    ]


def test_mismatch_in_some_files_names_them(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=3)
    write_lora(
        tmp_path / "model" / f"{NAME}-000002.safetensors",
        lora_metadata(NAME, 2, epochs=3, dim=8),
        rank=8,
    )
    write_settings(tmp_path, epochs=3)
    assert messages(scan_results(tmp_path).findings) == [
        f"warning: network_dim: the settings say 16, the files say 8 ({NAME}-000002.safetensors)"
    ]


def test_text_encoder_lr_list_and_unset_unet_lr_match(tmp_path: Path) -> None:
    meta = lora_metadata(NAME, 1, epochs=1)
    meta["ss_text_encoder_lr"] = "[2.5e-05, 2.5e-05]"
    meta["ss_unet_lr"] = "None"  # unset: the base learning rate applies
    write_lora(tmp_path / "model" / f"{NAME}.safetensors", meta)
    write_settings(tmp_path, epochs=1)
    assert scan_results(tmp_path).findings == []


def test_missing_epochs_and_no_metadata(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=6)
    (tmp_path / "model" / f"{NAME}-000002.safetensors").unlink()
    (tmp_path / "model" / f"{NAME}-000004.safetensors").unlink()
    write_lora(tmp_path / "model" / f"{NAME}-000003.safetensors", None)
    write_settings(tmp_path, epochs=6)
    res = scan_results(tmp_path)
    assert [f.shown_epoch for f in res.files] == [1, 3, 5, 6]
    assert messages(res.findings) == [
        f"warning: {NAME}-000003.safetensors: no training metadata (ss_*): not written by "
        "sd-scripts, or the metadata was stripped",
        f"warning: missing epoch files: {NAME}-000002, {NAME}-000004 (deleted, or "
        "save_last_n_epochs removed them)",
    ]


def test_missing_epochs_without_settings_use_the_saved_interval(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=8, save_every=2)
    (tmp_path / "model" / f"{NAME}-000004.safetensors").unlink()
    assert messages(scan_results(tmp_path).findings)[1:] == [
        f"warning: missing epoch files: {NAME}-000004 (deleted, or save_last_n_epochs removed them)"
    ]
    (tmp_path / "model" / f"{NAME}-000002.safetensors").unlink()  # 6 alone: every 6 fits
    assert messages(scan_results(tmp_path).findings)[1:] == []


def test_running_run_has_no_final_file(tmp_path: Path) -> None:
    write_run(tmp_path, upto=7)
    write_settings(tmp_path)
    res = scan_results(tmp_path)
    assert res.stems[-1] == f"{NAME}-000007"
    assert messages(res.findings) == [
        f"note: no final {NAME}.safetensors yet: training is running or stopped after epoch 7 of 15"
    ]


def test_resumed_run_step_count(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=6, upto=3)
    # Resumed from the epoch-3 state: sd-scripts restarts global_step at 0.
    for epoch in (4, 5, 6):
        stem = NAME if epoch == 6 else f"{NAME}-{epoch:06d}"
        meta = lora_metadata(NAME, epoch, epochs=6, steps=42 * (epoch - 3), session="777")
        write_lora(tmp_path / "model" / f"{stem}.safetensors", meta)
    write_settings(tmp_path, epochs=6)
    assert messages(scan_results(tmp_path).findings) == [
        "note: the files come from 2 training sessions (ss_session_id): a resumed run, or "
        "files of an earlier run left in model/",
        f"note: {NAME}-000004.safetensors and 2 later file(s): fewer steps recorded than "
        "epochs x 42 (epoch 4: 42, expected 168): a resumed run, sd-scripts restarts its "
        "step counter on --resume; the weights are fine, only ss_steps undercounts",
    ]


def test_other_names_renamed_and_unreadable_files(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=2)
    model = tmp_path / "model"
    write_lora(model / "old_try.safetensors", lora_metadata("old_try", 1, epochs=1))
    write_lora(model / f"{NAME}-step00000100.safetensors", lora_metadata(NAME, 1, epochs=2))
    (model / "broken.safetensors").write_bytes(b"\x01")
    write_lora(model / f"{NAME}-000001.safetensors", lora_metadata("hakone_v1", 1, epochs=2))
    write_settings(tmp_path, epochs=2)
    res = scan_results(tmp_path)
    assert res.stems == [f"{NAME}-000001", NAME]
    assert [p.name for p in res.others] == [
        "old_try.safetensors",
        f"{NAME}-step00000100.safetensors",
    ]
    assert messages(res.findings) == [
        f"warning: broken.safetensors: unreadable ({model / 'broken.safetensors'}: not a "
        "safetensors file (only 1 bytes).)",
        f"warning: {NAME}-000001.safetensors: its metadata says output name 'hakone_v1': the "
        "file was renamed or copied from another run",
        "note: old_try.safetensors: another output name, not part of the yumoto_hakone epochs",
        f"note: {NAME}-step00000100.safetensors: a step checkpoint (save_every_n_steps), not "
        "part of the yumoto_hakone epochs",
    ]


def test_name_chosen_from_files_without_settings(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=3)
    write_run(tmp_path, "other", epochs=2)
    res = scan_results(tmp_path, RunSettings(name="other"))
    assert res.stems == ["other-000001", "other"]
    res = scan_results(tmp_path)
    assert res.name == NAME


def test_settings_name_without_its_files(tmp_path: Path) -> None:
    write_run(tmp_path, "hakone_v1", epochs=2)
    write_settings(tmp_path, epochs=2)
    res = scan_results(tmp_path)
    assert res.files == []
    assert messages(res.findings)[0] == (
        f"warning: the settings' name is 'yumoto_hakone' but {tmp_path / 'model'} holds files "
        "named hakone_v1: was the name changed after training?"
    )


def test_empty_project_and_missing_folder(tmp_path: Path) -> None:
    write_settings(tmp_path)
    res = scan_results(tmp_path)
    assert res.files == []
    assert messages(res.findings) == [f"note: no LoRA files in {tmp_path / 'model'} yet"]
    with pytest.raises(ResultsError) as err:
        scan_results(tmp_path / "nope")
    assert err.value.render() == (
        f"Project folder not found: {tmp_path / 'nope'}\n  hint: Give the DEST folder of a run."
    )


def test_unreadable_settings_become_a_note(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=1)
    (tmp_path / "kohya-orch.toml").write_text("epochs = [\n", encoding="utf-8")
    res = scan_results(tmp_path)
    assert len(res.findings) == 1
    assert res.findings[0].message.startswith(
        f"settings not compared: {tmp_path / 'kohya-orch.toml'} is unreadable"
    )
