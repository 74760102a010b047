"""xyz.py: Forge's Prompt S/R value, LoRA tag and pitfalls, planned or from the files."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_factory import lora_metadata, write_lora, write_run, write_settings

from kohya_orchestrator.errors import InputError, ResultsError
from kohya_orchestrator.results.xyz import build_xyz, planned_entries, thin, xyz_for_dest

NAME = "yumoto_hakone"


def planned(epochs: int, save_every: int, **kw: object) -> str:
    plan = build_xyz(NAME, planned_entries(NAME, epochs, save_every), source="planned", **kw)  # type: ignore[arg-type]
    return plan.sr_value


def test_fifteen_epochs_save_every_1() -> None:
    value = planned(15, 1)
    assert value == ",".join([f"{NAME}-{e:06d}" for e in range(1, 15)] + [NAME])
    assert "-000015" not in value
    assert value.startswith("yumoto_hakone-000001,yumoto_hakone-000002,")
    assert value.endswith(",yumoto_hakone-000014,yumoto_hakone")


def test_fifteen_epochs_save_every_2() -> None:
    assert planned(15, 2) == (
        "yumoto_hakone-000002,yumoto_hakone-000004,yumoto_hakone-000006,yumoto_hakone-000008,"
        "yumoto_hakone-000010,yumoto_hakone-000012,yumoto_hakone-000014,yumoto_hakone"
    )


def test_fifteen_epochs_save_every_5() -> None:
    assert planned(15, 5) == "yumoto_hakone-000005,yumoto_hakone-000010,yumoto_hakone"


def test_tag_reminder_and_weight() -> None:
    plan = build_xyz(NAME, planned_entries(NAME, 15, 1), source="planned", weight=0.8)
    assert plan.lora_tag == "<lora:yumoto_hakone-000001:0.8>"
    assert plan.reminder == (
        "Prompt S/R replaces the first value, yumoto_hakone-000001, everywhere it appears in "
        "the prompt and negative prompt: put <lora:yumoto_hakone-000001:0.8> in the prompt "
        "exactly as shown, and nothing else that contains that text."
    )
    assert plan.warnings == []
    assert build_xyz(NAME, [(NAME, 1)], source="planned").lora_tag == "<lora:yumoto_hakone:1>"


def test_thin_keeps_the_final_file() -> None:
    entries = planned_entries(NAME, 15, 1)
    assert [e for _, e in thin(entries, 4, None)] == [4, 8, 12, 15]
    assert [e for _, e in thin(entries, None, 3)] == [13, 14, 15]
    assert [e for _, e in thin(entries, 2, 2)] == [14, 15]
    assert [s for s, _ in thin(entries, 100, None)] == [NAME]


def test_trigger_containing_the_search_value_is_flagged() -> None:
    # The trigger `yumoto_hakone` is a prefix of `yumoto_hakone-000001`: harmless, S/R
    # searches for the longer text.
    ok = build_xyz(NAME, planned_entries(NAME, 15, 1), source="planned", trigger=NAME)
    assert ok.warnings == []
    # With only the final file left, the search value is `yumoto_hakone` itself, which the
    # trigger contains: S/R would rewrite the trigger too.
    bad = build_xyz(NAME, planned_entries(NAME, 15, 1), source="planned", last=1, trigger=NAME)
    assert bad.warnings == [
        "only one value (yumoto_hakone): nothing to compare; Prompt S/R needs two or more "
        "(drop --every/--last, or wait for more epochs)",
        "the trigger 'yumoto_hakone' contains the first value 'yumoto_hakone': Prompt S/R "
        "would replace it inside the trigger too; put a numbered epoch first",
    ]


def test_names_with_commas_are_quoted_for_forge_csv() -> None:
    plan = build_xyz("a,b", planned_entries("a,b", 2, 1), source="planned")
    assert plan.sr_value == '"a,b-000001","a,b"'


def test_clip_skip_hint() -> None:
    plan = build_xyz(NAME, planned_entries(NAME, 2, 1), source="planned", clip_skip=2)
    assert plan.hints == [
        "generate with Clip skip 2 in Forge (Settings > Stable Diffusion), as anime-style "
        "models such as Pony expect; the training settings say clip_skip 2"
    ]
    one = build_xyz(NAME, planned_entries(NAME, 2, 1), source="planned", clip_skip=1)
    assert one.hints == [
        "generate with Clip skip 1 in Forge (the training settings say clip_skip 1)"
    ]


def test_bad_names_and_epochs() -> None:
    with pytest.raises(InputError) as err:
        planned_entries("runs/yumoto", 15, 1)
    assert err.value.render() == (
        "Not a LoRA output name: 'runs/yumoto'.\n  hint: Give the output name alone, e.g. "
        "yumoto_hakone (no folder, no extension)."
    )
    with pytest.raises(InputError):
        planned_entries(NAME, 0, 1)


def test_from_files_that_exist(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=6)
    (tmp_path / "model" / f"{NAME}-000003.safetensors").unlink()
    plan = xyz_for_dest(tmp_path)
    assert plan.source == "files"
    assert plan.sr_value == (
        "yumoto_hakone-000001,yumoto_hakone-000002,yumoto_hakone-000004,"
        "yumoto_hakone-000005,yumoto_hakone"
    )
    assert plan.epochs == [1, 2, 4, 5, 6]
    assert plan.hints[0].startswith("generate with Clip skip 2")  # from ss_clip_skip


def test_running_run_lists_only_existing_files(tmp_path: Path) -> None:
    write_run(tmp_path, upto=3)
    plan = xyz_for_dest(tmp_path)
    assert plan.stems == [f"{NAME}-000001", f"{NAME}-000002", f"{NAME}-000003"]
    assert plan.warnings == [
        "no final yumoto_hakone.safetensors yet (training running or stopped): the list has "
        "the epochs saved so far"
    ]


def test_every_thins_the_last_epoch_of_a_running_run(tmp_path: Path) -> None:
    # Epochs 1-5 of a 6-epoch run: h-000005 is not the final file, so --every 2 drops it.
    write_run(tmp_path, epochs=6, upto=5)
    plan = xyz_for_dest(tmp_path, every=2)
    assert plan.stems == [f"{NAME}-000002", f"{NAME}-000004"]
    assert plan.epochs == [2, 4]
    assert plan.warnings == [
        "no final yumoto_hakone.safetensors yet (training running or stopped): the list has "
        "the epochs saved so far"
    ]
    finished = tmp_path / "done"
    write_run(finished, epochs=5)
    assert xyz_for_dest(finished, every=2).stems == [f"{NAME}-000002", f"{NAME}-000004", NAME]


def test_clip_skip_none_in_metadata_gives_no_hint(tmp_path: Path) -> None:
    # sd-scripts writes ss_clip_skip "None" when unset: read as no value, as results does.
    meta = lora_metadata(NAME, 1, epochs=1)
    meta["ss_clip_skip"] = "None"
    write_lora(tmp_path / "model" / f"{NAME}.safetensors", meta)
    assert xyz_for_dest(tmp_path).hints == []
    meta["ss_clip_skip"] = "2"
    write_lora(tmp_path / "model" / f"{NAME}.safetensors", meta)
    assert xyz_for_dest(tmp_path).hints[0].startswith("generate with Clip skip 2")


def test_thin_without_a_final_file() -> None:
    entries: list[tuple[str, int | None]] = [(f"{NAME}-{e:06d}", e) for e in range(1, 6)]
    assert [e for _, e in thin(entries, 2, None, final=False)] == [2, 4]
    assert [e for _, e in thin(entries, 2, 1, final=False)] == [4]
    assert [e for _, e in thin(entries, None, 2, final=False)] == [4, 5]


def test_from_settings_before_training(tmp_path: Path) -> None:
    write_settings(tmp_path, epochs=10, save_every_n_epochs=3, clip_skip=1)
    plan = xyz_for_dest(tmp_path)
    assert plan.source == "settings"
    assert (
        plan.sr_value
        == "yumoto_hakone-000003,yumoto_hakone-000006,yumoto_hakone-000009,yumoto_hakone"
    )
    assert plan.hints == [
        "generate with Clip skip 1 in Forge (the training settings say clip_skip 1)"
    ]


def test_trigger_override_for_dest(tmp_path: Path) -> None:
    write_run(tmp_path, epochs=1)
    plan = xyz_for_dest(tmp_path, trigger="yumoto_hakone, glasses")
    assert plan.warnings[-1].startswith("the trigger 'yumoto_hakone, glasses' contains")


def test_nothing_to_plan_from(tmp_path: Path) -> None:
    with pytest.raises(ResultsError) as err:
        xyz_for_dest(tmp_path)
    assert err.value.render() == (
        f"No LoRA files in {tmp_path / 'model'} and no settings to plan from.\n  hint: Give a "
        "project folder made by `kohya-orch prepare`, or a name: kohya-orch xyz NAME --epochs 15"
    )
