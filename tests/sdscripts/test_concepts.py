"""The one concept-folder scanner: folders and images exactly as sd-scripts reads them."""

from __future__ import annotations

from pathlib import Path

from kohya_orchestrator.sdscripts.concepts import (
    NO_REPEATS,
    ZERO_REPEATS,
    caption_path,
    parse_repeats,
    scan_concepts,
    used_concepts,
)
from kohya_orchestrator.train.preflight import PreflightReport, _check_dataset
from kohya_orchestrator.train.runrecord import dataset_manifest


def _tree(base: Path) -> Path:
    files = {
        "3_x/a.png": b"1",
        "3_x/b.Png": b"2",  # sd-scripts globs .png and .PNG only
        "3_x/C.PNG": b"3",
        "3_x/._a.png": b"4",  # hidden (a macOS resource fork)
        "3_x/notes.gif": b"5",
        "5_/d.jpg": b"6",  # 5 repeats, no class tokens
        "0_off/e.png": b"7",
        "misc/f.png": b"8",
    }
    for name, data in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return base


def test_folders_and_images_as_sd_scripts_reads_them(tmp_path: Path) -> None:
    base = _tree(tmp_path / "img")
    found = {c.path.name: c for c in scan_concepts(base)}
    assert {n: (c.repeats, c.class_tokens, c.skipped) for n, c in found.items()} == {
        "0_off": (0, "off", ZERO_REPEATS),
        "3_x": (3, "x", ""),
        "5_": (5, "", ""),
        "misc": (0, "", NO_REPEATS),
    }
    assert [p.name for p in found["3_x"].images] == ["C.PNG", "a.png"]
    assert [c.path.name for c in used_concepts(base)] == ["3_x", "5_"]


def test_parse_repeats() -> None:
    assert parse_repeats("7_yumoto_hakone") == (7, "yumoto_hakone")
    assert parse_repeats("7_yumoto hakone") == (7, "yumoto hakone")
    assert parse_repeats("hakone") == (0, "")


def test_caption_path_is_splitext_plus_extension() -> None:
    assert caption_path(Path("/d/a.b.png"), ".txt") == Path("/d/a.b.txt")
    assert caption_path(Path("/d/a.png"), "txt") == Path("/d/atxt")


def test_a_broken_link_is_reported_not_dropped(tmp_path: Path) -> None:
    concept = tmp_path / "img" / "7_x"
    concept.mkdir(parents=True)
    (concept / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder,) = scan_concepts(tmp_path / "img")
    assert folder.images == []
    assert folder.broken == [concept / "gone.png"]


def test_preflight_counts_what_lint_and_plan_count(tmp_path: Path) -> None:
    # Regression: the preflight had a scanner of its own that counted 3_x/b.Png (its suffix
    # check ignored case) and skipped the 5_ folder (its pattern wanted a name after `_`).
    base = _tree(tmp_path / "img")
    for image in ("3_x/a.png", "3_x/C.PNG", "5_/d.jpg"):
        caption_path(base / image, ".txt").write_text("x")
    report = PreflightReport()
    _check_dataset(report, {"train_data_dir": str(base), "caption_extension": ".txt"})
    assert [(c.name, c.status, c.detail) for c in report.checks] == [
        ("captions", "ok", "every image has a .txt caption"),
        ("dataset", "ok", "3 image(s) in 3_x (2), 5_ (1)"),
        ("dataset", "warn", "sd-scripts will skip folder(s) misc"),
    ]


def test_run_record_lists_what_sd_scripts_trains(tmp_path: Path) -> None:
    base = _tree(tmp_path / "img")
    assert [e["file"] for e in dataset_manifest(base, ".txt")] == [
        "3_x/C.PNG",
        "3_x/a.png",
        "5_/d.jpg",
    ]
