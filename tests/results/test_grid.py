"""grid.py: the epoch x prompt contact sheet from sd-scripts' sample images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image
from results_factory import sample_name, write_sample

from kohya_orchestrator.errors import ResultsError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.results.grid import (
    HEADER_HEIGHT,
    LABEL_WIDTH,
    MISSING_CROSS,
    MISSING_FILL,
    PAD,
    WIDTH_CAP,
    parse_sample_name,
    plan_grid,
    read_prompts,
    write_grid,
)

NAME = "yumoto_hakone"


def color(epoch: int, index: int) -> tuple[int, int, int]:
    return (20 * epoch, 60 + 50 * index, 200)


def make_samples(
    dest: Path, epochs: int, prompts: int, skip: frozenset[tuple[int, int]] = frozenset()
) -> None:
    for epoch in range(1, epochs + 1):
        for index in range(prompts):
            if (epoch, index) not in skip:
                write_sample(dest, sample_name(NAME, epoch, index), color(epoch, index))


def test_sample_names_as_sd_scripts_writes_them() -> None:
    s = parse_sample_name(Path("yumoto_hakone_e000003_01_20261123221500_1234.png"))
    assert s is not None
    assert (s.name, s.epoch, s.index, s.time, s.seed) == (NAME, 3, 1, "20261123221500", 1234)
    no_name = parse_sample_name(Path("e000001_00_20261123221500.png"))
    assert no_name is not None and (no_name.name, no_name.seed) == (None, None)
    many = parse_sample_name(Path("a_b_e000010_123_20261123221500_7.png"))
    assert many is not None and (many.name, many.epoch, many.index) == ("a_b", 10, 123)
    # Step-based samples (`<name>_000100_00_...`) and other files are not epoch samples.
    assert parse_sample_name(Path("yumoto_hakone_000100_00_20261123221500_1.png")) is None
    assert parse_sample_name(Path("grid.png")) is None


def test_prompts_numbered_as_sd_scripts_does(tmp_path: Path) -> None:
    path = tmp_path / "sample_prompts.txt"
    path.write_text(
        "# sample prompts\n\nyumoto_hakone, portrait --n lowres --d 1\n"
        "  # indented: sd-scripts keeps it as a prompt\nyumoto_hakone, full body --d 2\n",
        encoding="utf-8",
    )
    assert read_prompts(path) == [
        "yumoto_hakone, portrait",
        "# indented: sd-scripts keeps it as a prompt",
        "yumoto_hakone, full body",
    ]
    assert read_prompts(tmp_path / "none.txt") == []


def test_grid_size_layout_and_pixels(tmp_path: Path) -> None:
    make_samples(tmp_path, epochs=3, prompts=2, skip=frozenset({(2, 1)}))
    (tmp_path / "sample_prompts.txt").write_text(
        "yumoto_hakone, 1boy, glasses, portrait --d 1\nyumoto_hakone, full body --d 2\n",
        encoding="utf-8",
    )
    path, plan, notes = write_grid(tmp_path)
    assert path == tmp_path / "compare" / "grid.png"
    assert notes == []
    assert (plan.columns, plan.rows) == ([1, 2, 3], [0, 1])
    assert plan.labels == {
        0: "yumoto_hakone, 1boy, glasses, portrait",
        1: "yumoto_hakone, full body",
    }
    assert plan.missing == [(1, 2)]
    assert plan.cell_width == plan.cell_height == 256  # 512 px samples, scaled down
    with Image.open(path) as im:
        sheet = im.convert("RGB")
    assert sheet.size == (
        LABEL_WIDTH + 3 * (256 + PAD) + PAD,
        HEADER_HEIGHT + 2 * (256 + PAD) + PAD,
    )
    for epoch in (1, 2, 3):
        for index in (0, 1):
            left, top, right, bottom = plan.cell_box(index, epoch)
            assert (right - left, bottom - top) == (256, 256)
            if (epoch, index) == (2, 1):
                assert sheet.getpixel((left + 60, top + 10)) == MISSING_FILL
                assert sheet.getpixel((left + 128, top + 128)) == MISSING_CROSS
            else:
                assert sheet.getpixel((left + 128, top + 128)) == color(epoch, index)
    # The labels are drawn: dark text pixels in the header and the left column.
    header = sheet.crop((LABEL_WIDTH, 0, sheet.width, HEADER_HEIGHT))
    assert header.convert("L").getextrema()[0] < 100
    labels = sheet.crop((0, HEADER_HEIGHT, LABEL_WIDTH, sheet.height))
    assert labels.convert("L").getextrema()[0] < 100


def test_newest_sample_wins(tmp_path: Path) -> None:
    write_sample(tmp_path, sample_name(NAME, 1, 0, time="20261123220000"), (255, 0, 0))
    write_sample(tmp_path, sample_name(NAME, 1, 0, time="20261123230000"), (0, 255, 0))
    write_sample(tmp_path, sample_name(NAME, 1, 0, time="20261123210000"), (0, 0, 255))
    path, plan, notes = write_grid(tmp_path)
    assert plan.cells[(0, 1)].name == sample_name(NAME, 1, 0, time="20261123230000")
    assert notes == ["2 sample(s) of an earlier run left out"]
    left, top, _, _ = plan.cell_box(0, 1)
    with Image.open(path) as im:
        assert im.convert("RGB").getpixel((left + 100, top + 100)) == (0, 255, 0)


def test_samples_of_an_earlier_run_are_left_out(tmp_path: Path) -> None:
    # An earlier 4-epoch run, then `train --force` with 2 epochs: sd-scripts kept the old files.
    for epoch in range(1, 5):
        for index in range(2):
            old = sample_name(NAME, epoch, index, time=f"2026112320{epoch:02d}{index:02d}")
            write_sample(tmp_path, old, (0, 0, 0), size=(64, 64))
    for epoch in range(1, 3):
        for index in range(2):
            new = sample_name(NAME, epoch, index, time=f"2026112322{epoch:02d}{index:02d}")
            write_sample(tmp_path, new, color(epoch, index), size=(64, 64))
    plan = plan_grid(Layout.at(tmp_path))
    assert plan.columns == [1, 2]
    assert plan.notes == ["8 sample(s) of an earlier run left out"]
    assert sorted(p.name for p in plan.cells.values()) == [
        sample_name(NAME, e, i, time=f"2026112322{e:02d}{i:02d}") for e in (1, 2) for i in (0, 1)
    ]


def test_resumed_run_and_later_prompts_of_the_first_epoch_stay(tmp_path: Path) -> None:
    # Prompts of one epoch are written seconds apart; a resumed run's epochs come later.
    for epoch, hour in ((1, 20), (2, 20), (3, 23), (4, 23)):
        for index in range(3):
            name = sample_name(NAME, epoch, index, time=f"20261123{hour}{epoch:02d}{index:02d}")
            write_sample(tmp_path, name, color(epoch, index), size=(64, 64))
    plan = plan_grid(Layout.at(tmp_path))
    assert plan.columns == [1, 2, 3, 4]
    assert len(plan.cells) == 12
    assert plan.notes == []


def test_tall_samples_and_prompt_rows_without_samples(tmp_path: Path) -> None:
    write_sample(tmp_path, sample_name(NAME, 0, 0), (1, 2, 3), size=(512, 768))  # sample_at_first
    write_sample(tmp_path, sample_name(NAME, 1, 0), (4, 5, 6), size=(512, 768))
    (tmp_path / "sample_prompts.txt").write_text("a\nb\nc\n", encoding="utf-8")
    plan = plan_grid(Layout.at(tmp_path))
    assert plan.columns == [0, 1]
    assert plan.rows == [0, 1, 2]  # prompts b and c never rendered: missing cells
    assert (plan.cell_width, plan.cell_height) == (256, 384)
    assert len(plan.missing) == 4


def test_row_labels_without_a_prompts_file(tmp_path: Path) -> None:
    make_samples(tmp_path, epochs=1, prompts=2)
    assert plan_grid(Layout.at(tmp_path)).labels == {0: "prompt 0", 1: "prompt 1"}


def test_many_epochs_stay_within_the_width_cap(tmp_path: Path) -> None:
    for epoch in range(1, 31):
        write_sample(tmp_path, sample_name(NAME, epoch, 0), (9, 9, 9), size=(64, 64))
    plan = plan_grid(Layout.at(tmp_path))
    assert plan.width <= WIDTH_CAP
    assert plan.cell_width == (WIDTH_CAP - LABEL_WIDTH - PAD * 31) // 30


def test_other_names_are_left_out(tmp_path: Path) -> None:
    make_samples(tmp_path, epochs=2, prompts=1)
    write_sample(tmp_path, sample_name("old", 1, 0), (0, 0, 0))
    plan = plan_grid(Layout.at(tmp_path))
    assert plan.columns == [1, 2]
    assert plan.notes == ["samples of 2 output names; showing yumoto_hakone"]
    assert plan_grid(Layout.at(tmp_path), name="old").columns == [1]


def test_unreadable_sample_is_a_marked_cell(tmp_path: Path) -> None:
    make_samples(tmp_path, epochs=2, prompts=1)
    bad = tmp_path / "model" / "sample" / sample_name(NAME, 2, 0)
    bad.write_bytes(b"\x89PNG truncated")
    path, plan, notes = write_grid(tmp_path)
    assert notes == [f"{bad.name}: unreadable, shown as missing"]
    left, top, _, _ = plan.cell_box(0, 2)
    with Image.open(path) as im:
        assert im.convert("RGB").getpixel((left + 60, top + 10)) == MISSING_FILL


def test_no_samples(tmp_path: Path) -> None:
    with pytest.raises(ResultsError) as err:
        write_grid(tmp_path)
    assert err.value.render() == (
        f"No sample images in {tmp_path / 'model' / 'sample'}.\n  hint: Turn on sampling in "
        "the settings (sample_every_n_epochs) before training; sd-scripts then writes one "
        "image per prompt and epoch there."
    )


def test_out_file_is_not_replaced_without_force(tmp_path: Path) -> None:
    make_samples(tmp_path, epochs=1, prompts=1)
    out = tmp_path / "mine.png"
    out.write_bytes(b"my picture")
    with pytest.raises(ResultsError) as err:
        write_grid(tmp_path, out)
    assert err.value.render() == (
        f"{out} already exists.\n  hint: Use --force to replace it, or give another --out."
    )
    assert out.read_bytes() == b"my picture"
    write_grid(tmp_path, out, force=True)
    with Image.open(out) as im:
        assert im.format == "PNG"
    # The default grid is this tool's own output: replaced on every run.
    first, _, _ = write_grid(tmp_path)
    os.utime(first, (0, 0))
    second, _, _ = write_grid(tmp_path)
    assert second.stat().st_mtime > 0
