"""Captioning real folders: plan sources, writes, idempotence, per-file errors, safety."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from faultkit import killed_run_leftovers
from imagefactory import ALL_KINDS, KINDS, default_name, make_image
from PIL import Image

from kohya_orchestrator import fsutil
from kohya_orchestrator.dataset.caption_apply import CaptionPlan, apply_captions, plan_captions
from kohya_orchestrator.dataset.caption_check import normalise_ext
from kohya_orchestrator.dataset.metadata import read_embedded
from kohya_orchestrator.errors import InputError
from kohya_orchestrator.locking import folder_lock

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


def save(path: Path, colour: tuple[int, int, int] = (40, 80, 120), fmt: str | None = None) -> Path:
    """A small real image; `fmt` overrides the format the extension implies."""
    img = Image.new("RGB", (48, 32), colour)
    img.putpixel((3, 4), (250, 10, 10))
    img.save(path, fmt or FORMATS[path.suffix.lower()])
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry's inode, mtime and bytes: equal snapshots mean nothing was written."""
    out = {}
    for p in sorted(folder.iterdir()):
        st = p.lstat()
        out[p.name] = (st.st_ino, st.st_mtime_ns, p.read_bytes() if p.is_file() else b"")
    return out


def embedded(path: Path) -> str | None:
    return read_embedded(path.read_bytes()).caption


def pixels(path: Path) -> bytes:
    with Image.open(path) as img:
        return img.convert("RGBA").tobytes()


def run(folder: Path, trigger: str = "yumoto_hakone", **kw: object) -> tuple[CaptionPlan, object]:
    plan = plan_captions(folder, trigger, **kw)  # type: ignore[arg-type]
    return plan, apply_captions(plan)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "yumoto_hakone"
    d.mkdir()
    save(d / "a.jpg")
    save(d / "b.png", (10, 200, 30))
    save(d / "c.webp", (200, 10, 30))
    (d / "a.txt").write_text("glasses,, black hair ,suit\n", encoding="utf-8")
    return d


def test_plan_writes_nothing(folder: Path) -> None:
    before = snapshot(folder)
    plan = plan_captions(folder, "yumoto_hakone")
    assert snapshot(folder) == before
    by_name = {i.image.name: i for i in plan.items}
    assert [i.image.name for i in plan.items] == ["a.jpg", "b.png", "c.webp"]
    a = by_name["a.jpg"]
    assert (a.source, a.caption, a.format) == (
        "txt",
        "yumoto_hakone, glasses, black hair, suit",
        "jpeg",
    )
    assert a.image_changes and a.txt_changes and a.error is None
    assert a.old_txt == "glasses,, black hair ,suit\n"
    b = by_name["b.png"]
    assert (b.source, b.caption, b.format) == ("empty", "yumoto_hakone", "png")
    assert by_name["c.webp"].format == "webp"
    assert plan.failures == [] and plan.warnings == []
    assert plan.trigger.keep_tokens == 1


def test_apply_writes_images_then_captions(folder: Path) -> None:
    originals = {p.name: pixels(p) for p in folder.glob("*.*") if p.suffix != ".txt"}
    _plan, result = run(folder)
    assert sorted(p.name for p in result.images_written) == ["a.jpg", "b.png", "c.webp"]
    assert sorted(p.name for p in result.captions_written) == ["a.txt", "b.txt", "c.txt"]
    assert result.failures == []
    assert (folder / "a.txt").read_bytes() == b"yumoto_hakone, glasses, black hair, suit\n"
    assert (folder / "b.txt").read_text(encoding="utf-8") == "yumoto_hakone\n"
    assert embedded(folder / "a.jpg") == "yumoto_hakone, glasses, black hair, suit"
    assert embedded(folder / "b.png") == "yumoto_hakone"
    assert embedded(folder / "c.webp") == "yumoto_hakone"
    for name, before in originals.items():
        assert pixels(folder / name) == before
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_second_run_writes_nothing(folder: Path) -> None:
    run(folder)
    before = snapshot(folder)
    plan, result = run(folder)
    assert plan.pending == []
    assert result.images_written == [] and result.captions_written == []
    assert snapshot(folder) == before


def test_sources_in_order(folder: Path) -> None:
    run(folder, tags="glasses, suit")
    # b.png had no caption: --tags was used. Its .txt is now removed: the embedded one is used.
    assert (folder / "b.txt").read_text(encoding="utf-8") == "yumoto_hakone, glasses, suit\n"
    (folder / "b.txt").unlink()
    image_before = (folder / "b.png").stat()
    plan, _ = run(folder, tags="Glasses")  # had it (ignoring case): nothing added
    item = next(i for i in plan.items if i.image.name == "b.png")
    assert (item.source, item.image_changes, item.txt_changes) == ("embedded", False, True)
    assert item.tags_added == ()
    assert (folder / "b.txt").read_text(encoding="utf-8") == "yumoto_hakone, glasses, suit\n"
    assert (folder / "b.png").stat().st_ino == image_before.st_ino
    # An edited .txt wins over the embedded caption, which is then updated.
    (folder / "b.txt").write_text("smile, yumoto_hakone", encoding="utf-8")
    plan, _ = run(folder)
    item = next(i for i in plan.items if i.image.name == "b.png")
    assert (item.source, item.caption) == ("txt", "yumoto_hakone, smile")
    assert embedded(folder / "b.png") == "yumoto_hakone, smile"


def test_tags_add_what_is_missing_or_replace(folder: Path) -> None:
    run(folder)
    (folder / "b.txt").write_text("yumoto_hakone, smile\n", encoding="utf-8")
    plan, _ = run(folder, tags="glasses, black hair, smile")
    item = next(i for i in plan.items if i.image.name == "b.png")
    assert (item.source, item.caption) == ("txt", "yumoto_hakone, smile, glasses, black hair")
    assert item.tags_added == ("glasses", "black hair")
    assert embedded(folder / "b.png") == "yumoto_hakone, smile, glasses, black hair"
    # The .txt deleted: the embedded caption is the base, --replace ignores it.
    (folder / "b.txt").unlink()
    plan, _ = run(folder, tags="1boy", replace_tags=True)
    item = next(i for i in plan.items if i.image.name == "b.png")
    assert (item.source, item.caption, item.tags_added) == (
        "tags",
        "yumoto_hakone, 1boy",
        ("1boy",),
    )
    assert (folder / "b.txt").read_text(encoding="utf-8") == "yumoto_hakone, 1boy\n"
    assert embedded(folder / "b.png") == "yumoto_hakone, 1boy"


def test_empty_caption_file_counts_as_none(folder: Path) -> None:
    (folder / "b.txt").write_text(" , \n", encoding="utf-8")
    plan, _ = run(folder, tags="glasses")
    item = next(i for i in plan.items if i.image.name == "b.png")
    assert (item.source, item.caption) == ("tags", "yumoto_hakone, glasses")


def test_caption_file_without_newline_is_left_alone(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("yumoto_hakone, glasses", encoding="utf-8")
    stamp = (tmp_path / "a.txt").stat()
    plan, _ = run(tmp_path)
    assert not plan.items[0].txt_changes and plan.items[0].image_changes
    assert (tmp_path / "a.txt").stat().st_ino == stamp.st_ino


def test_caption_file_with_bom_or_crlf_is_rewritten(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    save(tmp_path / "b.jpg")
    (tmp_path / "a.txt").write_bytes("\ufeffyumoto_hakone, glasses\n".encode())
    (tmp_path / "b.txt").write_bytes(b"yumoto_hakone,\r\nglasses\r\n")
    run(tmp_path)
    assert (tmp_path / "a.txt").read_bytes() == b"yumoto_hakone, glasses\n"
    assert (tmp_path / "b.txt").read_bytes() == b"yumoto_hakone, glasses\n"


@pytest.mark.parametrize(
    ("trigger", "txt", "expected"),
    [
        ("yumoto_hakone", "glasses, yumoto_hakone", "yumoto_hakone, glasses"),
        (
            "takeru_higa, takeru higa, takeru, higa",
            "takeru, 1boy, glasses",
            "takeru_higa, takeru higa, takeru, higa, 1boy, glasses",
        ),
        ("湯本箱根", "眼鏡, 黒髪,　スーツ", "湯本箱根, 眼鏡, 黒髪, スーツ"),
        ("yumoto_hakone", "smile 😀, 🧑‍💼 suit", "yumoto_hakone, smile 😀, 🧑‍💼 suit"),
    ],
)
@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_captions_round_trip(
    tmp_path: Path, trigger: str, txt: str, expected: str, ext: str
) -> None:
    image = save(tmp_path / f"img{ext}")
    (tmp_path / "img.txt").write_text(txt, encoding="utf-8")
    run(tmp_path, trigger)
    assert (tmp_path / "img.txt").read_text(encoding="utf-8") == expected + "\n"
    assert embedded(image) == expected
    before = snapshot(tmp_path)
    run(tmp_path, trigger)
    assert snapshot(tmp_path) == before


def test_caption_extension(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    (tmp_path / "a.caption").write_text("glasses", encoding="utf-8")
    (tmp_path / "a.txt").write_text("ignored", encoding="utf-8")
    plan, _ = run(tmp_path, ext="caption")
    assert plan.ext == ".caption"
    assert (tmp_path / "a.caption").read_text(encoding="utf-8") == "yumoto_hakone, glasses\n"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "ignored"


@pytest.mark.parametrize(
    ("ext", "message"),
    [
        ("", "Not a usable caption extension: ''."),
        (".", "Not a usable caption extension: '.'."),
        ("a/b", "Not a usable caption extension: 'a/b'."),
        (".tar.gz", "Not a usable caption extension: '.tar.gz'."),
        (".PNG", "The caption extension '.PNG' is an image extension."),
    ],
)
def test_bad_extension(ext: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        normalise_ext(ext)
    assert info.value.message == message


def test_bad_files_are_reported_and_untouched(tmp_path: Path) -> None:
    save(tmp_path / "good.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "random.png").write_bytes(os.urandom(0) + b"\x13\x37" * 40)
    (tmp_path / "anim.jpg").write_bytes(b"GIF89a" + b"\0" * 40)
    good = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(good[:2])
    (tmp_path / "cut.txt").write_text("old caption", encoding="utf-8")
    before = snapshot(tmp_path)
    _plan, result = run(tmp_path)
    lines = [f.line() for f in result.failures]
    assert lines == [
        "anim.jpg: unsupported image format: GIF",
        "cut.jpg: truncated JPEG file: only 2 bytes",
        "empty.jpg: empty file (0 bytes)",
        "random.png: not a JPEG, PNG or WebP image (starts with 13 37 13 37 13 37 13 37)",
    ]
    after = snapshot(tmp_path)
    for name in ("anim.jpg", "cut.jpg", "cut.txt", "empty.jpg", "random.png"):
        assert after[name] == before[name]
    assert sorted(after) == sorted([*before, "good.txt"])
    assert embedded(tmp_path / "good.jpg") == "yumoto_hakone"


def test_png_named_jpg_is_handled_as_png(tmp_path: Path) -> None:
    image = save(tmp_path / "a.jpg", fmt="PNG")
    plan, result = run(tmp_path)
    assert [w.line() for w in plan.warnings] == [
        "a.jpg: is a PNG file named .jpg; it is handled as PNG "
        "(rename it to .png so other tools agree)"
    ]
    assert result.failures == []
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert embedded(image) == "yumoto_hakone"


def test_nfc_nfd_twin_stems_are_refused(tmp_path: Path) -> None:
    # macOS writes NFD names; there `café` in NFC and in NFD are one name, one caption file.
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    save(tmp_path / f"{nfc}.png")
    save(tmp_path / f"{nfd}.jpg")
    before = snapshot(tmp_path)
    _plan, result = run(tmp_path)
    assert sorted(f.line() for f in result.failures) == sorted(
        [
            f"{nfd}.jpg: shares its stem with {nfc}.png: both would use the caption file "
            f"{nfd}.*; rename one of them (kohya-orch rename)",
            f"{nfc}.png: shares its stem with {nfd}.jpg: both would use the caption file "
            f"{nfc}.*; rename one of them (kohya-orch rename)",
        ]
    )
    assert snapshot(tmp_path) == before


def test_shared_stems_are_refused(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    save(tmp_path / "a.png")
    save(tmp_path / "B.webp")
    save(tmp_path / "b.jpg")
    save(tmp_path / "c.jpg")
    before = snapshot(tmp_path)
    _plan, result = run(tmp_path)
    assert [f.line() for f in result.failures] == [
        "a.jpg: shares its stem with a.png: both would use the caption file a.*; "
        "rename one of them (kohya-orch rename)",
        "a.png: shares its stem with a.jpg: both would use the caption file a.*; "
        "rename one of them (kohya-orch rename)",
        "b.jpg: shares its stem with B.webp: both would use the caption file b.*; "
        "rename one of them (kohya-orch rename)",
        "B.webp: shares its stem with b.jpg: both would use the caption file B.*; "
        "rename one of them (kohya-orch rename)",
    ]
    after = snapshot(tmp_path)
    assert sorted(after) == sorted([*before, "c.txt"])
    for name in ("a.jpg", "a.png", "B.webp", "b.jpg"):
        assert after[name] == before[name]


def test_caption_file_problems(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    save(tmp_path / "b.jpg")
    save(tmp_path / "c.jpg")
    (tmp_path / "a.txt").write_bytes(b"caf\xe9")
    (tmp_path / "b.txt").write_text("glasses\x00", encoding="utf-8")
    (tmp_path / "c.txt").mkdir()
    before = snapshot(tmp_path)
    _, result = run(tmp_path)
    assert [f.line() for f in result.failures] == [
        "a.jpg: a.txt is not UTF-8 text (byte 0xE9 at offset 3)",
        "b.jpg: b.txt: caption contains the control character U+0000 (NUL) at character 8",
        "c.jpg: c.txt exists but is not a file",
    ]
    assert snapshot(tmp_path) == before


def test_changed_since_planning(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    save(tmp_path / "b.jpg")
    plan = plan_captions(tmp_path, "yumoto_hakone")
    save(tmp_path / "a.jpg", (1, 2, 3))
    changed = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "b.txt").write_text("new", encoding="utf-8")
    result = apply_captions(plan)
    assert [f.line() for f in result.failures] == [
        "a.jpg: the image changed since it was read; left untouched",
        "b.jpg: b.txt changed since it was read; left untouched",
    ]
    assert (tmp_path / "a.jpg").read_bytes() == changed
    assert not (tmp_path / "a.txt").exists()
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "new"


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    """Only temps a killed run recorded in the lock file; never a user's file that merely
    starts like one (it was deleted as "a temp file" before)."""
    save(tmp_path / "a.jpg")
    (stale,) = killed_run_leftovers(tmp_path, "a.jpg")
    notes = tmp_path / f"{fsutil.TEMP_PREFIX}my-notes.txt"
    notes.write_text("mine", encoding="utf-8")
    plan = plan_captions(tmp_path, "yumoto_hakone")
    assert plan.stale_temps == (stale,)
    with folder_lock(tmp_path, "caption") as held:
        apply_captions(plan)
    assert held.removed == [stale]
    assert not stale.exists()
    assert notes.read_text(encoding="utf-8") == "mine"


def test_symlink_stays_a_link_and_mode_is_kept(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    target = save(store / "real.png")
    target.chmod(0o640)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.png").symlink_to(target)
    save(data / "b.jpg").chmod(0o604)
    _, result = run(data)
    assert result.failures == []
    assert (data / "a.png").is_symlink()
    assert embedded(target) == "yumoto_hakone"
    assert target.stat().st_mode & 0o777 == 0o640
    assert (data / "b.jpg").stat().st_mode & 0o777 == 0o604
    assert not [p for p in store.iterdir() if p.name.startswith(".")]


def test_hard_link_warning(tmp_path: Path) -> None:
    image = save(tmp_path / "a.jpg")
    os.link(image, tmp_path / "elsewhere.bin")
    plan, _ = run(tmp_path)
    assert [w.line() for w in plan.warnings] == [
        "a.jpg: has other hard links; only this name gets the captioned file, "
        "the other names keep the old one"
    ]
    assert embedded(image) == "yumoto_hakone"
    assert read_embedded((tmp_path / "elsewhere.bin").read_bytes()).caption is None


def test_bad_tags_and_trigger(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    with pytest.raises(InputError) as info:
        plan_captions(tmp_path, "yumoto_hakone", tags="a\x07")
    assert info.value.message == (
        "--tags: caption contains the control character U+0007 (BEL) at character 2"
    )
    with pytest.raises(InputError):
        plan_captions(tmp_path, " , ")


_MISLABELLED = {
    "png_as_jpg": "is a PNG file named .jpg; it is handled as PNG "
    "(rename it to .png so other tools agree)",
    "webp_as_png": "is a WebP file named .png; it is handled as WebP "
    "(rename it to .webp so other tools agree)",
}


def test_every_kind_of_file(tmp_path: Path) -> None:
    for kind in ALL_KINDS:
        make_image(kind, tmp_path)
    # A JPEG cut in its scan is captioned with a warning once nobody is writing it.
    old = time.time() - 60
    os.utime(tmp_path / default_name("jpeg_truncated_scan"), (old, old))
    originals = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    before_pixels = {
        default_name(k): pixels(tmp_path / default_name(k))
        for k in ALL_KINDS
        if KINDS[k].format is not None and k != "jpeg_truncated_scan"
    }
    caption = "yumoto_hakone, 眼鏡, smile 😀"
    plan, result = run(tmp_path, tags="眼鏡, smile 😀")
    failures = {f.path.name: f.message for f in result.failures}
    warnings: dict[str, list[str]] = {}
    for w in plan.warnings:
        warnings.setdefault(w.path.name, []).append(w.message)
    for kind_name in ALL_KINDS:
        kind = KINDS[kind_name]
        name = default_name(kind_name)
        path = tmp_path / name
        txt = path.with_suffix(".txt")
        if kind.format is None:
            assert failures[name] == kind.error
            assert path.read_bytes() == originals[name]
            assert not txt.exists()
            continue
        assert name not in failures
        expected = [
            *([_MISLABELLED[kind_name]] if kind_name in _MISLABELLED else []),
            *kind.warnings,
        ]
        assert warnings.get(name, []) == expected, name
        info = read_embedded(path.read_bytes())
        assert (info.format, info.caption) == (kind.format, caption)
        assert (info.generation_info is not None) == kind.generation_info
        assert txt.read_text(encoding="utf-8") == caption + "\n"
        if kind_name != "jpeg_truncated_scan":
            assert pixels(path) == before_pixels[name], name
    assert len(failures) == sum(1 for k in ALL_KINDS if KINDS[k].format is None)
    before = snapshot(tmp_path)
    plan, result = run(tmp_path, tags="smile 😀, 眼鏡")  # had them all: nothing to write
    assert plan.pending == [] and result.images_written == []
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["jpeg_a1111", "png_a1111", "webp_a1111"])
def test_overwrite_generation_info(tmp_path: Path, kind: str) -> None:
    image = make_image(kind, tmp_path)
    plan, _ = run(tmp_path)
    assert [w.message for w in plan.warnings] == list(KINDS[kind].warnings)
    assert read_embedded(image.read_bytes()).generation_info is not None
    plan, result = run(tmp_path, overwrite_generation_info=True)
    assert plan.warnings == [] and result.images_written == [image]
    info = read_embedded(image.read_bytes())
    assert info.caption == "yumoto_hakone"


def test_apply_without_cached_bytes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Beyond the memory budget, apply embeds again instead of using the planned bytes.
    from kohya_orchestrator.dataset import caption_apply

    monkeypatch.setattr(caption_apply, "EMBED_CACHE_BYTES", 0)
    plan, result = run(folder)
    assert plan.embedded_data == {}
    assert len(result.images_written) == 3
    assert embedded(folder / "a.jpg") == "yumoto_hakone, glasses, black hair, suit"
    before = snapshot(folder)
    run(folder)
    assert snapshot(folder) == before


def test_symlinked_caption_file_stays_a_link(tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    store = tmp_path / "captions"
    store.mkdir()
    (store / "a.txt").write_text("glasses", encoding="utf-8")
    (tmp_path / "a.txt").symlink_to(store / "a.txt")
    _, result = run(tmp_path)
    assert result.failures == []
    assert (tmp_path / "a.txt").is_symlink()
    assert (store / "a.txt").read_text(encoding="utf-8") == "yumoto_hakone, glasses\n"
