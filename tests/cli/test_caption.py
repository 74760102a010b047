"""`kohya-orch caption` and `kohya-orch captions` through the command line."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from faultkit import killed_run_leftovers
from PIL import Image

from kohya_orchestrator.cli import cli
from kohya_orchestrator.cli.common import PROGRESS_MIN_ITEMS
from kohya_orchestrator.dataset.metadata import read_embedded

FORMATS = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


def save(path: Path, fmt: str | None = None) -> Path:
    Image.new("RGB", (40, 30), (90, 60, 30)).save(path, fmt or FORMATS[path.suffix])
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "yumoto_hakone"
    d.mkdir()
    save(d / "yumoto_hakone_1.jpg")
    save(d / "yumoto_hakone_2.png")
    save(d / "yumoto_hakone_3.webp")
    (d / "yumoto_hakone_1.txt").write_text("glasses, suit, yumoto_hakone\n", encoding="utf-8")
    return d


def test_dry_run_shows_changes_and_writes_nothing(runner: CliRunner, folder: Path) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    result = runner.invoke(
        cli, ["caption", "yumoto_hakone", str(folder), "--dry-run"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert result.stdout == (
        "yumoto_hakone_1.jpg: would write image and .txt (from the caption file): "
        "yumoto_hakone, glasses, suit\n"
        "yumoto_hakone_2.png: would write image and .txt (no caption yet: trigger only): "
        "yumoto_hakone\n"
        "yumoto_hakone_3.webp: would write image and .txt (no caption yet: trigger only): "
        "yumoto_hakone\n"
        "Dry run: 3 of 3 images would change (3 images to embed, 3 .txt files to write); "
        "nothing was written. Train with keep_tokens = 1.\n"
    )
    assert result.stderr == ""
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


def test_caption_then_again(runner: CliRunner, folder: Path) -> None:
    args = ["caption", "yumoto_hakone", str(folder), "--tags", "1boy,  glasses"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == (
        f"3 images in {folder}: 3 images embedded, 3 .txt files written, "
        "0 already up to date. --tags: added 5 tags to 3 images. Train with keep_tokens = 1.\n"
    )
    assert (folder / "yumoto_hakone_2.txt").read_text(encoding="utf-8") == (
        "yumoto_hakone, 1boy, glasses\n"
    )
    assert (folder / "yumoto_hakone_1.txt").read_text(encoding="utf-8") == (
        "yumoto_hakone, glasses, suit, 1boy\n"
    )
    assert read_embedded((folder / "yumoto_hakone_3.webp").read_bytes()).caption == (
        "yumoto_hakone, 1boy, glasses"
    )
    stamps = sorted((p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir())
    result = runner.invoke(cli, [*args, "--verbose"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.stdout == (
        "yumoto_hakone_1.jpg: up to date: yumoto_hakone, glasses, suit, 1boy\n"
        "yumoto_hakone_2.png: up to date: yumoto_hakone, 1boy, glasses\n"
        "yumoto_hakone_3.webp: up to date: yumoto_hakone, 1boy, glasses\n"
        f"3 images in {folder}: 0 images embedded, 0 .txt files written, "
        "3 already up to date. --tags: added 0 tags to 0 images; 3 already had them all. "
        "Train with keep_tokens = 1.\n"
    )
    after = sorted((p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir())
    assert after == stamps


def test_tags_after_a_first_caption_and_replace(runner: CliRunner, folder: Path) -> None:
    runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-q"], catch_exceptions=False)
    for txt in folder.glob("*.txt"):
        txt.unlink()  # the embedded captions remain
    args = ["caption", "yumoto_hakone", str(folder), "--tags", "glasses, black hair"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.stdout == (
        f"3 images in {folder}: 3 images embedded, 3 .txt files written, "
        "0 already up to date. --tags: added 5 tags to 3 images. Train with keep_tokens = 1.\n"
    )
    assert (folder / "yumoto_hakone_2.txt").read_text(encoding="utf-8") == (
        "yumoto_hakone, glasses, black hair\n"
    )
    result = runner.invoke(cli, [*args[:-1], "1boy", "--replace"], catch_exceptions=False)
    assert result.stdout == (
        f"3 images in {folder}: 3 images embedded, 3 .txt files written, "
        "0 already up to date. --tags --replace: 3 captions set to the trigger and --tags. "
        "Train with keep_tokens = 1.\n"
    )
    assert {p.read_text(encoding="utf-8") for p in folder.glob("*.txt")} == {
        "yumoto_hakone, 1boy\n"
    }
    result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "--replace"])
    assert (result.exit_code, result.output.splitlines()[-1]) == (
        2,
        "Error: Invalid value for '--replace': --replace needs --tags.",
    )


def test_quiet_prints_nothing(runner: CliRunner, folder: Path) -> None:
    result = runner.invoke(
        cli, ["caption", "yumoto_hakone", str(folder), "-q"], catch_exceptions=False
    )
    assert (result.exit_code, result.output) == (0, "")
    assert (folder / "yumoto_hakone_2.txt").exists()


def test_multi_token_trigger_and_ext(runner: CliRunner, folder: Path) -> None:
    trigger = "takeru_higa, takeru higa, takeru, higa"
    result = runner.invoke(
        cli, ["caption", trigger, str(folder), "--ext", "caption"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert result.stdout.endswith("Train with keep_tokens = 4.\n")
    assert (folder / "yumoto_hakone_2.caption").read_text(encoding="utf-8") == trigger + "\n"
    assert (folder / "yumoto_hakone_1.txt").read_text(encoding="utf-8") == (
        "glasses, suit, yumoto_hakone\n"
    )


def test_failures_exit_1_and_list_files(runner: CliRunner, folder: Path) -> None:
    (folder / "broken.jpg").write_bytes(b"\xff\xd8")
    (folder / "blank.webp").write_bytes(b"")
    save(folder / "mislabelled.jpg", "PNG")
    result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"6 images in {folder}: 4 images embedded, 4 .txt files written, "
        "0 already up to date, 2 failed. Train with keep_tokens = 1.\n"
    )
    assert result.stderr == (
        "warning: mislabelled.jpg: is a PNG file named .jpg; it is handled as PNG "
        "(rename it to .png so other tools agree)\n"
        "Error: 2 of 6 images failed and were left untouched:\n"
        "  - blank.webp: empty file (0 bytes)\n"
        "  - broken.jpg: truncated JPEG file: only 2 bytes\n"
    )
    assert (folder / "broken.jpg").read_bytes() == b"\xff\xd8"
    assert not (folder / "broken.txt").exists()


def test_dry_run_with_failures_exits_1(runner: CliRunner, folder: Path) -> None:
    (folder / "x.png").write_bytes(b"GIF89a" + bytes(20))
    result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-n", "-q"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: 1 of 4 images cannot be captioned:\n  - x.png: unsupported image format: GIF\n"
    )


def test_json(runner: CliRunner, folder: Path) -> None:
    result = runner.invoke(
        cli, ["caption", "yumoto_hakone", str(folder), "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["trigger"] == {
        "text": "yumoto_hakone",
        "tokens": ["yumoto_hakone"],
        "keep_tokens": 1,
    }
    assert data["dry_run"] is False and data["failures"] == []
    assert [Path(p).name for p in data["written"]["caption_files"]] == [
        "yumoto_hakone_1.txt",
        "yumoto_hakone_2.txt",
        "yumoto_hakone_3.txt",
    ]
    first = data["images"][0]
    assert first["source"] == "txt"
    assert first["caption"] == "yumoto_hakone, glasses, suit"
    assert first["old_caption_file"] == "glasses, suit, yumoto_hakone\n"
    assert first["image_changes"] is True and first["format"] == "jpeg"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["caption", ""],
            "Error: Invalid value for 'TRIGGER': The trigger '' is empty.\n"
            "  hint: Give the word the LoRA learns, e.g. 'yumoto_hakone'; several tokens may "
            "be comma-separated.\n",
        ),
        (
            ["caption", "a\nb"],
            "Error: Invalid value for 'TRIGGER': The trigger 'a\\nb' contains a line break.\n"
            "  hint: Give the trigger on one line, e.g. 'yumoto_hakone' or 'takeru_higa, "
            "takeru'.\n",
        ),
        (
            ["caption", "x", "--ext", ".png"],
            "Error: Invalid value for '--ext': The caption extension '.png' is an image "
            "extension.\n  hint: Use .txt (what sd-scripts is told to read) or .caption.\n",
        ),
        (
            ["caption", "x", "--tags", "a\x1b"],
            "Error: Invalid value for '--tags': caption contains the control character "
            "U+001B (ESC) at character 2\n  hint: Remove it from the caption; only printable "
            "text, tabs and line breaks are allowed.\n",
        ),
    ],
)
def test_bad_arguments_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert result.stderr.endswith(message)


def test_missing_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["caption", "x", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Folder not found: {tmp_path / 'nope'}\n"
        "  hint: Check the path, or cd into the image folder.\n"
    )


def test_check_table(runner: CliRunner, folder: Path) -> None:
    runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-q"], catch_exceptions=False)
    (folder / "yumoto_hakone_2.txt").write_text("glasses", encoding="utf-8")
    (folder / "yumoto_hakone_3.txt").unlink()
    save(folder / "extra.png")
    save(folder / "extra.jpg")
    save(folder / "fresh.webp")
    (folder / "fresh.txt").write_text(
        "yumoto_hakone, 眼鏡, a very long caption that goes on and on, and on\n\n",
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["captions", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == (
        "IMAGE                 TXT CAPTION                                   EMBEDDED       "
        "FLAGS\n"
        "extra.jpg             -                                             -              "
        "shared-stem, no-caption\n"
        "extra.png             -                                             -              "
        "shared-stem, no-caption\n"
        "fresh.webp            yumoto_hakone, 眼鏡, a very long caption th…  -              "
        "not-embedded, untidy\n"
        "yumoto_hakone_1.jpg   yumoto_hakone, glasses, suit                  (same)\n"
        "yumoto_hakone_2.png   glasses                                       yumoto_hakone  "
        "mismatch, no-trigger\n"
        "yumoto_hakone_3.webp  -                                             yumoto_hakone  "
        "no-caption-file, trigger-only\n"
        "\n"
        "Problems:\n"
        "  extra.jpg: shares its stem with extra.png: both would use the caption file "
        "extra.*; rename one of them (kohya-orch rename)\n"
        "  extra.jpg: no caption (no extra.txt, nothing embedded)\n"
        "  extra.png: shares its stem with extra.jpg: both would use the caption file "
        "extra.*; rename one of them (kohya-orch rename)\n"
        "  extra.png: no caption (no extra.txt, nothing embedded)\n"
        "  fresh.webp: caption not embedded in the image\n"
        "  fresh.webp: fresh.txt is not one clean line (run caption to tidy it)\n"
        "  yumoto_hakone_2.png: yumoto_hakone_2.txt and the embedded caption differ\n"
        "  yumoto_hakone_2.png: does not start with the trigger 'yumoto_hakone'\n"
        "  yumoto_hakone_3.webp: caption embedded, but no yumoto_hakone_3.txt "
        "(sd-scripts reads that)\n"
        "  yumoto_hakone_3.webp: the caption is the trigger alone: add tags that describe the "
        "image (kohya-orch tag, or caption --tags)\n"
        "\n"
        "Trigger: yumoto_hakone (guessed from the captions); keep_tokens = 1.\n"
        "6 images, 1 fine, 5 flagged (shared-stem 2, no-caption 2, no-caption-file 1, "
        "not-embedded 1, mismatch 1, no-trigger 1, untidy 1, trigger-only 1).\n"
    )


def test_check_all_fine_exits_0(runner: CliRunner, folder: Path) -> None:
    runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-q"], catch_exceptions=False)
    result = runner.invoke(
        cli, ["caption", "yumoto_hakone", str(folder), "--check", "-q"], catch_exceptions=False
    )
    # Two of the three captions are the trigger alone: flagged, not fine.
    assert (result.exit_code, result.stdout) == (
        1,
        "Trigger: yumoto_hakone; keep_tokens = 1.\n3 images, 1 fine, 2 flagged (trigger-only 2).\n",
    )
    runner.invoke(
        cli,
        ["caption", "yumoto_hakone", str(folder), "-q", "--tags", "glasses"],
        catch_exceptions=False,
    )
    result = runner.invoke(
        cli, ["caption", "yumoto_hakone", str(folder), "--check", "-q"], catch_exceptions=False
    )
    assert (result.exit_code, result.stdout) == (
        0,
        "Trigger: yumoto_hakone; keep_tokens = 1.\n3 images, 3 fine.\n",
    )
    result = runner.invoke(cli, ["captions", str(folder), "--trigger", "someone, else", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["trigger"] == {
        "text": "someone, else",
        "tokens": ["someone", "else"],
        "keep_tokens": 2,
        "source": "given",
    }
    assert data["summary"] == {"images": 3, "flagged": 3, "flags": {"no-trigger": 3}}
    assert data["images"][0]["caption_file_text"] == "yumoto_hakone, glasses, suit\n"
    assert data["images"][0]["embedded"] == "yumoto_hakone, glasses, suit"


def test_check_unknown_trigger(runner: CliRunner, tmp_path: Path) -> None:
    save(tmp_path / "a.jpg")
    save(tmp_path / "b.jpg")
    (tmp_path / "a.txt").write_text("x, y", encoding="utf-8")
    (tmp_path / "b.txt").write_text("z", encoding="utf-8")
    (tmp_path / "c.png").write_bytes(b"junk")
    result = runner.invoke(cli, ["captions", str(tmp_path), "-q"])
    assert result.exit_code == 1
    assert result.stdout == (
        "Trigger: unknown (no leading tag is shared by most captions; give --trigger).\n"
        "3 images, 0 fine, 3 flagged (unreadable 1, not-embedded 2).\n"
    )


def test_caption_all_script(tmp_path: Path) -> None:
    save(tmp_path / "a.png")
    exe = Path(sys.executable).with_name("caption_all")
    proc = subprocess.run(
        [str(exe), "yumoto_hakone", str(tmp_path), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("a.png: would write image and .txt")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("Usage: caption_all [OPTIONS] TRIGGER [FOLDER]")


def test_no_images(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    for args in (["caption", "x", str(tmp_path)], ["captions", str(tmp_path)]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1
        assert result.stderr == (
            f"Error: No images in {tmp_path}.\n"
            "  hint: Images are files ending in .png, .jpg, .jpeg, .webp or .bmp (any case).\n"
        )


def _lock(folder: Path) -> tuple[list[str], str]:
    """Make `folder` unwritable (chattr +i as root, where chmod does not stop root)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ["chmod", "755", str(folder)], "Permission denied"
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr to make a folder unwritable for root")
    if subprocess.run(["chattr", "+i", str(folder)], check=False).returncode != 0:
        pytest.skip("this file system does not support chattr +i")
    return ["chattr", "-i", str(folder)], "Operation not permitted"


def test_unwritable_folder(runner: CliRunner, folder: Path) -> None:
    unlock, reason = _lock(folder)
    try:
        result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder)])
    finally:
        subprocess.run(unlock, check=True)
    assert result.exit_code == 1
    # The lock file is the first thing written: nothing is begun in a folder it cannot hold.
    assert result.stderr == (
        f"Error: Cannot work in {folder}: cannot create the lock file .kohya-orch.lock there: "
        f"{reason}; nothing was changed.\n"
        "  hint: The folder must be writable: fix its permissions (or free some space), then "
        "run the command again.\n"
    )
    assert not (folder / "yumoto_hakone_2.txt").exists()


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    for n in range(PROGRESS_MIN_ITEMS):
        Image.new("RGB", (8, 8), (n, 0, 0)).save(tmp_path / f"img_{n}.png")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "kohya_orchestrator", "caption", "x", str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=secondary,
            check=False,
            text=True,
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
    terminal = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "Reading" in terminal and "Captioning" in terminal and "100%" in terminal
    assert proc.stdout.startswith(f"{PROGRESS_MIN_ITEMS} images in {tmp_path}")
    quiet = subprocess.run(
        [sys.executable, "-m", "kohya_orchestrator", "caption", "x", str(tmp_path), "-q"],
        capture_output=True,
        check=True,
    )
    assert quiet.stdout == quiet.stderr == b""


def test_dry_run_mentions_stale_temp_files(runner: CliRunner, folder: Path) -> None:
    runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-q"], catch_exceptions=False)
    (stale,) = killed_run_leftovers(folder, "yumoto_hakone_1.jpg")
    notes = folder / ".kohya-orch-tmp-my-notes.txt"
    notes.write_text("the user's own file", encoding="utf-8")
    result = runner.invoke(
        cli, ["caption", "yumoto_hakone", str(folder), "-n"], catch_exceptions=False
    )
    assert result.stdout == (
        f"would remove a temp file left by an interrupted run: {stale.name}\n"
        "Dry run: 0 of 3 images would change (0 images to embed, 0 .txt files to write); "
        "nothing was written. Train with keep_tokens = 1.\n"
    )
    assert stale.exists()
    result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder)], catch_exceptions=False)
    assert result.stdout.startswith(
        f"Removed a temp file left by an interrupted run: {stale.name}\n"
    )
    assert not stale.exists()
    assert notes.read_text(encoding="utf-8") == "the user's own file"
    assert not (folder / ".kohya-orch.lock").exists()


def test_a_250_byte_file_name_is_captioned(runner: CliRunner, tmp_path: Path) -> None:
    """Legal names near NAME_MAX: our temp names must not push them past it."""
    stem = "x" * 246
    Image.new("RGB", (16, 16), (10, 20, 30)).save(tmp_path / f"{stem}.png")
    result = runner.invoke(cli, ["caption", "hero", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{stem}.txt").read_text(encoding="utf-8") == "hero\n"
    assert read_embedded((tmp_path / f"{stem}.png").read_bytes()).caption == "hero"


def _interrupted_rename(tmp_path: Path) -> Path:
    """A folder where `rename p` stopped with the image renamed and its caption in a temp."""
    from kohya_orchestrator.dataset.journal import new_journal, write_journal

    d = tmp_path / "half"
    d.mkdir()
    save(d / "a.png")
    (d / "a.txt").write_text("glasses, suit\n", encoding="utf-8")
    journal = new_journal([("a.png", "p_1.png"), ("a.txt", "p_1.txt")], "p")
    write_journal(d, journal)
    for move in journal.moves:
        os.rename(d / move.src, d / move.tmp)
    os.rename(d / journal.moves[0].tmp, d / journal.moves[0].dst)
    return d


@pytest.mark.parametrize("command", ["caption", "captions"])
def test_interrupted_rename_is_refused(runner: CliRunner, tmp_path: Path, command: str) -> None:
    d = _interrupted_rename(tmp_path)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in d.iterdir())
    args = [command, "p", str(d)] if command == "caption" else [command, str(d)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: A rename in {d} was interrupted.\n"
        f"  hint: Run `kohya-orch rename PREFIX {d}` to finish it (or --undo), "
        f"then {command}.\n"
    )
    assert sorted((p.name, p.stat().st_mtime_ns) for p in d.iterdir()) == before
    # The rename can still be finished, and the caption is the user's, not a new one.
    result = runner.invoke(cli, ["rename", "p", str(d)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (d / "p_1.txt").read_text(encoding="utf-8") == "glasses, suit\n"


def test_upper_case_caption_extension_is_refused(runner: CliRunner, folder: Path) -> None:
    (folder / "yumoto_hakone_2.TXT").write_text("hat\n", encoding="utf-8")
    result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-q"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 of 3 images failed and were left untouched:\n"
        "  - yumoto_hakone_2.png: its caption file is yumoto_hakone_2.TXT, but sd-scripts "
        "reads yumoto_hakone_2.txt; rename yumoto_hakone_2.TXT to yumoto_hakone_2.txt\n"
    )
    assert not (folder / "yumoto_hakone_2.txt").exists()
    assert (folder / "yumoto_hakone_2.TXT").read_text(encoding="utf-8") == "hat\n"
    result = runner.invoke(cli, ["captions", str(folder), "--json"])
    assert result.exit_code == 1
    row = json.loads(result.stdout)["images"][1]
    assert row["flags"][0] == "caption-case"
    assert row["problems"][0] == (
        "its caption file is yumoto_hakone_2.TXT, but sd-scripts reads yumoto_hakone_2.txt; "
        "rename yumoto_hakone_2.TXT to yumoto_hakone_2.txt"
    )


def test_caption_file_linking_to_a_missing_file(runner: CliRunner, folder: Path) -> None:
    (folder / "yumoto_hakone_2.txt").symlink_to("gone.txt")
    problem = (
        "yumoto_hakone_2.txt is a link to a missing file (gone.txt); remove it or fix the link"
    )
    result = runner.invoke(cli, ["caption", "yumoto_hakone", str(folder), "-q"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 of 3 images failed and were left untouched:\n"
        f"  - yumoto_hakone_2.png: {problem}\n"
    )
    assert os.readlink(folder / "yumoto_hakone_2.txt") == "gone.txt"
    assert not (folder / "gone.txt").exists()
    result = runner.invoke(cli, ["captions", str(folder), "--json"])
    assert result.exit_code == 1
    row = json.loads(result.stdout)["images"][1]
    assert (row["flags"], row["problems"]) == (["unreadable"], [problem])


def test_bmp_and_left_alone(runner: CliRunner, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.bmp")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "b.gif")
    (tmp_path / "c.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16)
    result = runner.invoke(cli, ["caption", "hero", str(tmp_path), "--tags", "red"])
    assert result.exit_code == 0
    assert result.stderr == (
        "warning: a.bmp: a BMP holds no metadata: its caption is in the caption file only\n"
        "warning: caption left 2 files alone: b.gif, c.heic: sd-scripts does not read HEIC, "
        "HEIF, AVIF, GIF or TIFF; `kohya-orch prepare` converts them into PNG copies\n"
    )
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "hero, red\n"
    result = runner.invoke(cli, ["captions", str(tmp_path), "--trigger", "hero"])
    assert (result.exit_code, result.stdout.splitlines()[-1]) == (0, "1 image, 1 fine.")
    result = runner.invoke(cli, ["rename", "hero", str(tmp_path), "--yes"])
    assert result.exit_code == 0
    assert (tmp_path / "hero_1.bmp").exists() and (tmp_path / "b.gif").exists()
    assert "warning: rename left 2 files alone: b.gif, c.heic" in result.stderr
