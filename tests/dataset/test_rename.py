"""The pure rename plan: numbering, order, width, sidecars, idempotence, collisions."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from kohya_orchestrator.dataset.rename import (
    Listing,
    RenameMove,
    apply_rename,
    plan_folder,
    plan_rename,
    require_clean,
)
from kohya_orchestrator.errors import DatasetError, InputError, PlanConflictError

F = Path("/data")


def plan(*files: str, prefix: str = "p", others: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    result = plan_rename(F, Listing(files, others), prefix)
    assert result.problems == ()
    return [(m.src, m.dst) for m in result.moves]


def test_tricky_names_natural_order_and_lowercase_extensions() -> None:
    files = (
        "img 10.PNG",
        "img 9.jpg",
        "Img 2.JPEG",
        "café au lait.webp",
        "  spaced  .Jpg",
        "漢字.png",
        "notes.md",
    )
    result = plan_rename(F, Listing(files), "yumoto_hakone")
    assert result.problems == ()
    assert result.width == 1
    assert [(m.src, m.dst) for m in result.moves] == [
        ("  spaced  .Jpg", "yumoto_hakone_1.jpg"),
        ("café au lait.webp", "yumoto_hakone_2.webp"),
        ("Img 2.JPEG", "yumoto_hakone_3.jpeg"),
        ("img 9.jpg", "yumoto_hakone_4.jpg"),
        ("img 10.PNG", "yumoto_hakone_5.png"),
        ("漢字.png", "yumoto_hakone_6.png"),
    ]


def test_width_fits_the_count() -> None:
    files = [f"x{i}.png" for i in range(1, 101)]
    result = plan_rename(F, Listing(tuple(files)), "p")
    assert result.width == 3
    assert result.moves[0] == RenameMove("x1.png", "p_001.png", True)
    assert result.moves[-1] == RenameMove("x100.png", "p_100.png", True)


def test_sidecars_move_with_their_image() -> None:
    assert plan("a.png", "a.txt", "a.caption", "a.NPZ", "b.jpg", "b.TXT", "c.txt") == [
        ("a.png", "p_1.png"),
        ("a.caption", "p_1.caption"),
        ("a.NPZ", "p_1.npz"),
        ("a.txt", "p_1.txt"),
        ("b.jpg", "p_2.jpg"),
        ("b.TXT", "p_2.txt"),
    ]


def test_hidden_files_and_folders_are_left_alone() -> None:
    assert plan(".a.png", "b.png", others=("sub.png",)) == [("b.png", "p_1.png")]


def test_already_named_images_keep_their_names_and_new_ones_follow() -> None:
    result = plan_rename(F, Listing(("p_1.png", "p_2.jpg", "p_2.txt", "new.png", "new.txt")), "p")
    assert result.kept == ("p_1.png", "p_2.jpg")
    assert [(m.src, m.dst) for m in result.moves] == [
        ("new.png", "p_3.png"),
        ("new.txt", "p_3.txt"),
    ]


def test_width_grows_for_new_names_only() -> None:
    files = (*(f"p_{i}.png" for i in range(1, 10)), "z.png")
    assert plan(*files) == [("z.png", "p_10.png")]


def test_existing_wider_padding_is_kept_for_new_names() -> None:
    assert plan("p_001.png", "p_7.png", "new.png") == [("new.png", "p_008.png")]


def test_gaps_are_not_refilled() -> None:
    assert plan("p_1.png", "p_5.png", "new.png") == [("new.png", "p_6.png")]


def test_prefix_match_is_exact() -> None:
    # P_1 / p_1x / p_ do not count as numbered with prefix "p".
    assert plan("P_1.png", "p_1x.png", "p_.png") == [
        ("P_1.png", "p_1.png"),
        ("p_1x.png", "p_2.png"),
        ("p_.png", "p_3.png"),
    ]


def test_prefix_with_regex_characters() -> None:
    assert plan("a+b_1.png", "x.png", prefix="a+b") == [("x.png", "a+b_2.png")]


def test_second_plan_after_the_first_changes_nothing() -> None:
    files = ("b 2.png", "b 10.jpg", "b 10.txt", "a.webp", "p_3.png")
    first = plan_rename(F, Listing(files), "p")
    renamed = {m.src: m.dst for m in first.moves}
    after = tuple(renamed.get(f, f) for f in files)
    second = plan_rename(F, Listing(after), "p")
    assert second.moves == ()
    assert second.problems == ()
    assert sorted(second.kept) == ["p_3.png", "p_4.webp", "p_5.png", "p_6.jpg"]


def test_target_taken_by_a_file_that_is_not_renamed() -> None:
    result = plan_rename(F, Listing(("a.png", "a.txt", "p_1.txt"), ("p_1.png",)), "p")
    assert result.problems == (
        "a.png -> p_1.png: p_1.png already exists and is not renamed",
        "a.txt -> p_1.txt: p_1.txt already exists and is not renamed",
    )


def test_names_differing_only_by_case() -> None:
    files = ("a.png", "a.txt", "P_1.TXT", "b.png", "b.txt", "b.TXT")
    result = plan_rename(F, Listing(files), "p")
    assert result.problems == (
        "P_1.TXT and p_1.txt differ only by case or accents, one name on macOS: "
        "P_1.TXT, a.txt -> p_1.txt",
        "2 files would be named p_2.txt: b.TXT -> p_2.txt, b.txt -> p_2.txt",
    )


def test_names_differing_only_by_unicode_normalization() -> None:
    # HFS+ stores decomposed names; APFS compares them as equal to the composed form.
    nfd = unicodedata.normalize("NFD", "café_1.txt")
    result = plan_rename(F, Listing(("a.png", "a.txt", nfd)), "café")
    assert result.problems == (
        f"{nfd} and café_1.txt differ only by case or accents, one name on macOS: "
        f"{nfd}, a.txt -> café_1.txt",
    )


def test_two_images_with_one_stem() -> None:
    result = plan_rename(F, Listing(("a.jpg", "a.png", "a.txt", "b.png")), "p")
    assert result.problems == (
        "a.jpg and a.png share the stem 'a' (one caption file for two images)",
    )


def test_two_images_whose_stems_differ_only_by_case_share_a_caption_on_macos() -> None:
    result = plan_rename(F, Listing(("IMG_1.jpg", "IMG_1.txt", "img_1.JPG", "b.png")), "p")
    assert result.problems == (
        "IMG_1.jpg and img_1.JPG share the stem 'IMG_1' (one caption file for two images)",
    )


def test_two_kept_images_with_one_stem_are_not_touched() -> None:
    result = plan_rename(F, Listing(("p_1.jpg", "p_1.png", "p_1.txt", "b.png")), "p")
    assert result.problems == ()
    assert result.moves == (RenameMove("b.png", "p_2.png", True),)


def test_every_problem_is_listed_in_one_error() -> None:
    files = ("a.jpg", "a.png", "c.png", "c.txt", "d.png", "d.txt", "p_3.txt", "P_4.TXT")
    result = plan_rename(F, Listing(files), "p")
    with pytest.raises(PlanConflictError) as info:
        require_clean(result)
    assert info.value.render() == (
        f"Cannot rename in {F}: 3 problems found, nothing was changed.\n"
        "  - a.jpg and a.png share the stem 'a' (one caption file for two images)\n"
        "  - c.txt -> p_3.txt: p_3.txt already exists and is not renamed\n"
        "  - P_4.TXT and p_4.txt differ only by case or accents, one name on macOS: "
        "P_4.TXT, d.txt -> p_4.txt\n"
        "  hint: Move, rename or delete the files listed, then run the command again."
    )


def _write(folder: Path, files: dict[str, bytes]) -> None:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name[0] != "."}


def test_collision_leaves_files_untouched(tmp_path: Path) -> None:
    files = {"a.jpg": b"1", "a.png": b"2", "a.txt": b"3", "p_1.txt": b"4", "b.png": b"5"}
    _write(tmp_path, files)
    result = plan_folder(tmp_path, "p")
    with pytest.raises(PlanConflictError):
        apply_rename(result)
    assert _contents(tmp_path) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_apply_then_second_run_changes_nothing(tmp_path: Path) -> None:
    files = {"x 10.PNG": b"10", "x 9.jpg": b"9", "x 9.txt": b"cap9", "naïve.webp": b"n"}
    _write(tmp_path, files)
    apply_rename(plan_folder(tmp_path, "p"))
    after = _contents(tmp_path)
    assert after == {"p_1.webp": b"n", "p_2.jpg": b"9", "p_2.txt": b"cap9", "p_3.png": b"10"}
    again = plan_folder(tmp_path, "p")
    assert again.moves == ()
    apply_rename(again)
    assert _contents(tmp_path) == after


def test_plan_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        plan_folder(tmp_path, "a/b")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError) as info:
        plan_folder(tmp_path, "p")
    assert info.value.render() == (
        f"No images in {tmp_path}.\n"
        "  hint: Images are files ending in .png, .jpg, .jpeg, .webp or .bmp (any case)."
    )


def test_kept_images_get_lower_case_sidecar_suffixes_when_unambiguous() -> None:
    assert plan("p_1.png", "p_1.TXT", "p_2.png", "p_2.Caption") == [
        ("p_1.TXT", "p_1.txt"),
        ("p_2.Caption", "p_2.caption"),
    ]
    # The lower-case name is taken, or the stem is shared: left as it is.
    assert plan("p_1.png", "p_1.TXT", "p_1.txt") == []
    assert plan("p_1.png", "p_1.jpg", "p_1.TXT") == []
    assert plan("p_1.png", "p_1.TXT", "p_1.Txt") == []


def test_lowered_kept_sidecar_second_run_changes_nothing(tmp_path: Path) -> None:
    _write(tmp_path, {"p_1.png": b"1", "p_1.TXT": b"hat"})
    apply_rename(plan_folder(tmp_path, "p"))
    assert _contents(tmp_path) == {"p_1.png": b"1", "p_1.txt": b"hat"}
    assert plan_folder(tmp_path, "p").moves == ()
