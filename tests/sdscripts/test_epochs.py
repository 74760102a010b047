"""Epoch file naming, as sd-scripts does it."""

from __future__ import annotations

from kohya_orchestrator.sdscripts.epochs import epoch_of_stem, planned_lora_stems, saved_epochs


def test_every_epoch_final_unnumbered() -> None:
    stems = planned_lora_stems("yumoto_hakone", 15, 1)
    assert stems[0] == "yumoto_hakone-000001"
    assert stems[-2:] == ["yumoto_hakone-000014", "yumoto_hakone"]
    assert len(stems) == 15
    assert "yumoto_hakone-000015" not in stems


def test_save_every_5_and_2() -> None:
    assert saved_epochs(15, 5) == [5, 10, 15]
    assert planned_lora_stems("x", 15, 5) == ["x-000005", "x-000010", "x"]
    assert saved_epochs(15, 2) == [2, 4, 6, 8, 10, 12, 14, 15]
    assert saved_epochs(15, None) == [15]
    assert saved_epochs(0, 1) == []


def test_epoch_of_stem() -> None:
    assert epoch_of_stem("a_b", "a_b-000003") == 3
    assert epoch_of_stem("a_b", "a_b") is None
    assert epoch_of_stem("a_b", "other-000003") is None
