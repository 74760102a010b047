"""The second hostile pass (issue 14): one test per defect it found, each failing on the code
before the fix. One writer per folder, temps that are provably ours, files that change under
us, no hang and no traceback on odd input, and the messages it asked for.
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import results_factory as rf
from click.testing import CliRunner
from faultkit import CLI, checkpoint, killed_run_leftovers, tree_with_modes
from imagefactory import image_bytes

from kohya_orchestrator.cli import cli
from kohya_orchestrator.fsutil import TEMP_PREFIX
from kohya_orchestrator.locking import LOCK_NAME
from robustness.test_hostile import images, project

HOLD = """
import sys, time
from pathlib import Path
from kohya_orchestrator.locking import folder_lock
with folder_lock(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(120)
"""


class Holder:
    """Another kohya-orch (a subprocess) holding a folder's lock while a test runs."""

    def __init__(self, folder: Path, command: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(folder), command], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == "held\n"
        record = json.loads((folder / LOCK_NAME).read_text(encoding="utf-8"))
        since = time.strftime("%H:%M:%S", time.localtime(record["since"]))
        self.message = (
            f"Error: another kohya-orch (pid {self.proc.pid}: {command}) is working in "
            f"{folder} since {since}\n"
            "  hint: Wait until it has finished (or stop it), then run this command again.\n"
        )

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _lora_project(root: Path) -> Path:
    dest = root / "run"
    rf.write_settings(dest)
    rf.write_run(dest, epochs=2)
    rf.write_sample(dest, rf.sample_name("yumoto_hakone", 1, 0), (255, 0, 0), (64, 64))
    return dest


def _refused_cases(root: Path) -> dict[str, tuple[Path, list[str]]]:
    """command -> (the folder whose lock it needs, its argv)."""
    imgs = images(root / "imgs")
    dest = project(root)
    model = root / "m.safetensors"
    lora = _lora_project(root)
    forge = root / "forge"
    forge.mkdir()
    undo = images(root / "undo")
    assert CliRunner().invoke(cli, ["rename", "p", str(undo)]).exit_code == 0
    prepare = ["prepare", "hero", "--images", str(imgs), "--dest", str(dest)]
    return {
        "rename": (imgs, ["rename", "p", str(imgs)]),
        "rename --undo": (undo, ["rename", "--undo", str(undo)]),
        "caption": (imgs, ["caption", "hero", str(imgs)]),
        "caption --tags": (imgs, ["caption", "hero", str(imgs), "--tags", "1boy"]),
        "prepare": (dest, [*prepare, "--model", str(model), "--repeats", "5"]),
        "config": (dest, ["config", str(dest)]),
        "templates cp": (dest, ["templates", "cp", "sdxl_lora.toml.j2", str(dest)]),
        "train": (dest, ["train", str(dest)]),
        "grid": (lora, ["grid", str(lora)]),
        "export": (forge, ["export", str(lora), "--to", str(forge)]),
        "export --link": (forge, ["export", str(lora), "--to", str(forge), "--link"]),
    }


COMMANDS = [
    "rename",
    "rename --undo",
    "caption",
    "caption --tags",
    "prepare",
    "config",
    "templates cp",
    "train",
    "grid",
    "export",
    "export --link",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_second_command_in_a_folder_is_refused_and_changes_nothing(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """`caption` and `rename` at once stored a picture under two names; two `prepare` runs
    lost 216 manifest entries: now the second command stops at once, exit 1."""
    monkeypatch.setenv("KOHYA_SD_SCRIPTS", str(tmp_path / "no-sd-scripts"))
    folder, argv = _refused_cases(tmp_path)[command]
    holder = Holder(folder, "caption")
    try:
        before = tree_with_modes(tmp_path)
        result = runner.invoke(cli, argv)
        after = tree_with_modes(tmp_path)
    finally:
        holder.stop()
    assert result.exit_code == 1, result.output
    assert result.stderr == holder.message
    assert after == before


# ------------------------------------------------------------------- temps that are ours


def test_caption_never_deletes_a_users_file_named_like_a_temp(
    tmp_path: Path, runner: CliRunner
) -> None:
    imgs = images(tmp_path / "imgs")
    notes = imgs / ".kohya-orch-tmp-my-notes.txt"
    notes.write_text("my notes", encoding="utf-8")
    result = runner.invoke(cli, ["caption", "hero", str(imgs)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Removed a temp file" not in result.output
    assert notes.read_text(encoding="utf-8") == "my notes"


@pytest.mark.parametrize("link", [False, True], ids=["copy", "link"])
def test_export_removes_the_partial_file_a_killed_export_left_in_forge(
    tmp_path: Path, runner: CliRunner, link: bool
) -> None:
    lora = _lora_project(tmp_path)
    forge = tmp_path / "forge"
    forge.mkdir()
    (partial,) = killed_run_leftovers(forge, "yumoto_hakone.safetensors", command="export")
    args = ["export", str(lora), "--to", str(forge)] + (["--link"] if link else [])
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not partial.exists()
    assert sorted(p.name for p in forge.iterdir()) == [
        "yumoto_hakone-000001.safetensors",
        "yumoto_hakone.safetensors",
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["config", "{dest}"],
        ["templates", "cp", "sample_prompts.txt.j2", "{dest}"],
        ["prepare", "hero", "--images", "{imgs}", "--dest", "{dest}", "--model", "{model}"],
    ],
    ids=["config", "templates cp", "prepare"],
)
def test_a_killed_writer_in_dest_leaves_no_temp_after_the_next_run(
    tmp_path: Path, runner: CliRunner, command: list[str]
) -> None:
    dest = project(tmp_path)
    (temp,) = killed_run_leftovers(dest, "config.toml", command="config")
    paths = {"dest": dest, "imgs": tmp_path / "imgs", "model": tmp_path / "m.safetensors"}
    argv = [a.format(**paths) for a in command]
    result = runner.invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert not temp.exists()
    assert not (dest / LOCK_NAME).exists()


def test_grid_removes_a_killed_grids_temp(tmp_path: Path, runner: CliRunner) -> None:
    lora = _lora_project(tmp_path)
    (lora / "compare").mkdir()
    (temp,) = killed_run_leftovers(lora, "grid.png", command="grid")
    temp.rename(lora / "compare" / temp.name)
    record = json.loads((lora / LOCK_NAME).read_text(encoding="utf-8"))
    record["folders"].append(str((lora / "compare").resolve()))
    (lora / LOCK_NAME).write_text(json.dumps(record), encoding="utf-8")
    result = runner.invoke(cli, ["grid", str(lora)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (lora / "compare").iterdir()) == ["grid.png"]


def test_templates_ls_lists_templates_only(tmp_path: Path, runner: CliRunner) -> None:
    dest = project(tmp_path)
    (dest / "templates").mkdir()
    (dest / "templates" / f"{TEMP_PREFIX}0123456789ab-1-sdxl_lora.toml.j2").write_text("x")
    (dest / "templates" / "notes.txt").write_text("not a template")
    result = runner.invoke(cli, ["templates", "ls", str(dest)], catch_exceptions=False)
    assert result.exit_code == 0
    assert TEMP_PREFIX not in result.output
    assert "notes.txt" not in result.output
    packaged = runner.invoke(cli, ["templates", "ls"], catch_exceptions=False)
    assert result.output == packaged.output  # DEST/templates holds no template


# ------------------------------------------------------------ files that change under us


def _truncated_jpeg() -> bytes:
    data = image_bytes("jpeg_baseline", (64, 64))
    return data[: len(data) * 2 // 3]  # cut inside the scan: what a writer has so far


def test_a_jpeg_still_being_written_is_left_untouched(tmp_path: Path, runner: CliRunner) -> None:
    """Captioning a JPEG another program was still writing replaced it with its first part:
    the rest that program wrote went to the orphaned file, and the exit code was 0."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    half = _truncated_jpeg()
    (imgs / "a.jpg").write_bytes(half)
    result = runner.invoke(cli, ["caption", "hero", str(imgs)])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: 1 of 1 images failed and were left untouched:\n"
        "  - a.jpg: the JPEG ends inside its image data and was modified "
    )
    assert result.stderr.endswith(
        " s ago: another program may still be writing it; left untouched (run caption again "
        "once the file is complete)\n"
    )
    assert (imgs / "a.jpg").read_bytes() == half
    assert not (imgs / "a.txt").exists()


def test_a_caption_file_edited_while_its_image_was_written_is_reported_truly(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editing a.txt while caption wrote a.png said 'a.png: ... left untouched', though
    a.png had been replaced. Now it says what was done and what was left."""
    from kohya_orchestrator import fsutil

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "a.png").write_bytes(image_bytes("png_rgb", (32, 32)))
    (imgs / "a.txt").write_text("glasses", encoding="utf-8")
    real = fsutil.atomic_write_bytes

    def write_then_edit(target: Path, data: bytes, **kwargs: object) -> None:
        real(target, data, **kwargs)  # type: ignore[arg-type]
        if target.name == "a.png":
            (imgs / "a.txt").write_text("the user's new caption", encoding="utf-8")

    monkeypatch.setattr(fsutil, "atomic_write_bytes", write_then_edit)
    result = runner.invoke(cli, ["caption", "hero", str(imgs)])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 of 1 images failed and were left untouched:\n"
        "  - a.png: the image was captioned, but a.txt changed since it was read; a.txt was "
        "left untouched\n"
    )
    assert (imgs / "a.txt").read_text(encoding="utf-8") == "the user's new caption"


def test_an_image_replaced_with_the_same_size_and_time_is_not_overwritten(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Size and mtime alone miss a file swapped for another: the inode is checked too, just
    before the replacing rename."""
    from kohya_orchestrator.dataset import caption_apply

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    original = image_bytes("png_rgb", (32, 32))
    (imgs / "a.png").write_bytes(original)
    monkeypatch.setattr(caption_apply, "EMBED_CACHE_BYTES", 0)  # apply embeds again
    from kohya_orchestrator.dataset import metadata

    real_embed = metadata.embed_caption

    def swap_then_embed(data: bytes, caption: str, **kwargs: object) -> object:
        st = os.stat(imgs / "a.png")
        (imgs / "b").write_bytes(original)
        os.utime(imgs / "b", ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(imgs / "b", imgs / "a.png")  # another program's copy, same size and time
        return real_embed(data, caption, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(metadata, "embed_caption", swap_then_embed)
    result = runner.invoke(cli, ["caption", "hero", str(imgs)])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 of 1 images failed and were left untouched:\n"
        "  - a.png: the image changed since it was read; left untouched\n"
    )
    assert (imgs / "a.png").read_bytes() == original


def test_a_fifo_beside_an_image_never_hangs(tmp_path: Path) -> None:
    """A FIFO named a.txt beside a.png made `captions` wait forever (now: a subprocess with
    a timeout, so a hang fails the test instead of the suite)."""
    imgs = images(tmp_path / "imgs", ("a.png", "b.jpg"))
    (imgs / "a.txt").unlink()
    os.mkfifo(imgs / "a.txt")
    for argv in (["captions", str(imgs)], ["caption", "hero", str(imgs)]):
        done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
    assert "a.txt: not a regular file but a named pipe (FIFO); not read" in done.stdout + (
        subprocess.run(
            [*CLI, "captions", str(imgs)], capture_output=True, text=True, timeout=60
        ).stdout
    )


# ----------------------------------------------------------------------------- tracebacks


@pytest.mark.parametrize(("override", "key"), [('sd_scripts.a"b=1', 'a"b'), ("sd_scripts.=1", "")])
@pytest.mark.parametrize("command", ["config", "plan"])
def test_an_sd_scripts_key_that_is_no_option_name(
    tmp_path: Path, runner: CliRunner, override: str, key: str, command: str
) -> None:
    dest = project(tmp_path)
    result = runner.invoke(cli, [command, str(dest), "--set", override])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 problem in the settings:\n"
        f"  - --set: [sd_scripts] key {key!r} is not an sd-scripts option name (letters, "
        "digits and _); it cannot go into config.toml\n"
        "  hint: Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` "
        "lists every setting with its kohya_ss GUI name.\n"
    )


@pytest.mark.parametrize("command", ["config", "plan"])
def test_the_same_key_in_the_settings_file(tmp_path: Path, runner: CliRunner, command: str) -> None:
    dest = project(tmp_path, lambda text: text + 'sd_scripts."a\\"b" = 1\n')
    result = runner.invoke(cli, [command, str(dest)])
    assert result.exit_code == 1
    assert (
        f"  - {dest / 'kohya-orch.toml'}: [sd_scripts] key 'a\"b' is not an sd-scripts option "
        "name (letters, digits and _); it cannot go into config.toml\n"
    ) in result.stderr
    assert "Traceback" not in result.output


def _header_file(path: Path, header: bytes) -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    return path


HOSTILE_HEADERS = {
    "nested": (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested more than 64 levels"),
    "digits": (
        b'{"t":{"dtype":"F16","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,0]}}',
        "a number with 5,000 digits (at most 40)",
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_HEADERS))
@pytest.mark.parametrize("command", ["inspect", "results", "xyz", "export", "prepare"])
def test_a_hostile_safetensors_header_is_a_clear_error(
    tmp_path: Path, runner: CliRunner, kind: str, command: str
) -> None:
    header, said = HOSTILE_HEADERS[kind]
    imgs = images(tmp_path / "imgs")
    dest = tmp_path / "run"
    rf.write_settings(dest)
    (dest / "model").mkdir(exist_ok=True)
    name = "yumoto_hakone.safetensors"
    model = _header_file(tmp_path / name if command == "prepare" else dest / "model" / name, header)
    forge = tmp_path / "forge"
    forge.mkdir()
    argv = {
        "inspect": ["inspect", str(model)],
        "results": ["results", str(dest)],
        "xyz": ["xyz", str(dest)],
        "export": ["export", str(dest), "--to", str(forge)],
        "prepare": [
            *("prepare", "hero", "--images", str(imgs)),
            *("--dest", str(tmp_path / "new"), "--model", str(model)),
        ],
    }[command]
    before = tree_with_modes(tmp_path)
    result = runner.invoke(cli, argv)
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    if command in ("inspect", "prepare"):
        assert result.exit_code == 1
        assert f"{model}: not a safetensors file (its header is {said}" in result.stderr
    elif command == "results":  # lists the file as unreadable
        assert f"not a safetensors file (its header is {said}" in result.output
    # xyz plans from the settings and export finds nothing it can copy: no traceback either
    assert tree_with_modes(tmp_path) == before


BAD_NAME = os.fsdecode(b"Pic\xff5.png")


def test_rename_reports_a_name_that_is_not_utf8(tmp_path: Path, runner: CliRunner) -> None:
    imgs = images(tmp_path / "imgs", ("a.png", "b.jpg"))
    (imgs / BAD_NAME).write_bytes(image_bytes("png_rgb", (16, 16)))
    before = tree_with_modes(tmp_path)
    result = runner.invoke(cli, ["rename", "p", str(imgs)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Cannot rename in {imgs}: 1 problem found, nothing was changed.\n"
        "  - Pic\\xff5.png: the name is not valid UTF-8 (shown with \\x escapes); rename it by "
        "hand first\n"
        "  hint: Move, rename or delete the files listed, then run the command again.\n"
    )
    assert tree_with_modes(tmp_path) == before


def test_prepare_reports_a_name_that_is_not_utf8_before_making_dest(
    tmp_path: Path, runner: CliRunner
) -> None:
    imgs = images(tmp_path / "imgs", ("a.png",))
    (imgs / BAD_NAME).write_bytes(image_bytes("png_rgb", (16, 16)))
    model = checkpoint(tmp_path / "m.safetensors")
    dest = tmp_path / "dest"
    argv = ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)]
    result = runner.invoke(cli, argv)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: Cannot prepare {dest}: 1 file name(s) are not valid UTF-8 (shown with \\x "
        "escapes), nothing was changed.\n"
        f"  - {imgs}/Pic\\xff5.png\n"
        "  hint: Rename those files by hand (e.g. with only letters, digits and _), then run "
        "prepare again.\n"
    )
    assert not dest.exists()


# -------------------------------------------------------------------------- wrong results


def test_templates_cp_takes_template_names_never_paths(tmp_path: Path, runner: CliRunner) -> None:
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "notes.txt").write_text("private")
    dest = project(tmp_path / "p")
    name = os.path.relpath(outside / "notes.txt", dest / "templates")
    before = tree_with_modes(tmp_path)
    result = runner.invoke(cli, ["templates", "cp", name, str(dest)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {name!r} is not a template name: a template is a file name ending in .j2 "
        "from the template folders, never a path.\n"
        "  hint: See `kohya-orch templates ls` for the names.\n"
    )
    assert tree_with_modes(tmp_path) == before


def test_prepare_adopts_and_records_what_it_finds_in_place(
    tmp_path: Path, runner: CliRunner
) -> None:
    """After `cp -a DEST/* COPY/`, prepare COPY found the links right but did not record
    them, so an image removed from the source later left a dangling link for ever."""
    dest = project(tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in dest.iterdir():
        if not item.name.startswith("."):
            subprocess.run(["cp", "-a", str(item), str(copy)], check=True)
    argv = ["prepare", "hero", "--images", str(tmp_path / "imgs"), "--dest", str(copy)]
    argv += ["--model", str(tmp_path / "m.safetensors")]
    first = runner.invoke(cli, argv, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "nothing to change: all 6 files are in place (symlinks)" in first.stdout
    (tmp_path / "imgs" / "c.webp").unlink()
    (tmp_path / "imgs" / "c.txt").unlink()
    second = runner.invoke(cli, argv, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "  0 added, 0 updated, 2 removed, 4 unchanged (symlinks)" in second.stdout
    assert sorted(p.name for p in (copy / "img" / "7_hero").iterdir()) == [
        "a.png",
        "a.txt",
        "b.jpg",
        "b.txt",
    ]


KILL_AFTER_COPIES = """
import os, sys
from kohya_orchestrator.project import apply
real = apply._make
made = [0]
def make(link, target, old, *rest):
    if made[0] == 3:
        os._exit(137)  # as SIGKILL: nothing after this runs
    made[0] += 1
    return real(link, target, old, *rest)
apply._make = make
from kohya_orchestrator.cli import main
sys.argv = ["kohya-orch", *sys.argv[1:]]
main()
"""


def test_prepare_copy_killed_then_renamed_source_holds_each_image_once(
    tmp_path: Path, runner: CliRunner
) -> None:
    """`prepare --copy` killed after 3 copies, `rename` in the source, `prepare` again: it
    kept the 3 stale copies ("changed in DEST") beside the new ones."""
    imgs = images(tmp_path / "imgs", ("a.png", "b.jpg", "c.webp", "d.png", "e.jpg", "f.webp"))
    for txt in imgs.glob("*.txt"):
        txt.unlink()
    model = checkpoint(tmp_path / "m.safetensors")
    dest = tmp_path / "dest"
    argv = ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_COPIES, *argv, "--copy"], capture_output=True
    )
    assert killed.returncode == 137, killed.stderr
    assert len(list((dest / "img" / "7_hero").iterdir())) == 3
    assert runner.invoke(cli, ["rename", "hero", str(imgs)]).exit_code == 0
    result = runner.invoke(cli, [*argv, "--copy"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "changed in DEST" not in result.output
    assert sorted(p.name for p in (dest / "img" / "7_hero").iterdir()) == [
        f"hero_{n}{ext}" for n, ext in enumerate((".png", ".jpg", ".webp") * 2, start=1)
    ]


# ------------------------------------------------------------------------------ messages


def test_hardlink_across_file_systems_says_to_use_symlink_or_copy(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXDEV is not a full disk: the hint named free space before."""
    imgs = images(tmp_path / "imgs")
    model = checkpoint(tmp_path / "m.safetensors")
    dest = tmp_path / "dest"

    def cross(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))

    monkeypatch.setattr(os, "link", cross)
    argv = ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)]
    result = runner.invoke(cli, [*argv, "--hardlink"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: --hardlink cannot work here: {imgs} and {dest} are on different file "
        "systems, and a hard link cannot cross from one to another; nothing was linked.\n"
        "  hint: Use --symlink (the default) or --copy instead.\n"
    )


def test_hardlink_across_real_file_systems_is_refused_before_anything(
    tmp_path: Path, runner: CliRunner
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm)")
    imgs = images(tmp_path / "imgs")
    model = checkpoint(tmp_path / "m.safetensors")
    dest = shm / f"kohya-orch-test-{os.getpid()}" / "dest"
    argv = ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)]
    try:
        result = runner.invoke(cli, [*argv, "--hardlink"])
        assert result.exit_code == 1
        assert "hint: Use --symlink (the default) or --copy instead." in result.stderr
        assert not dest.parent.exists()
    finally:
        subprocess.run(["rm", "-rf", str(dest.parent)], check=True)


def test_a_settings_file_with_a_bom_is_read(tmp_path: Path, runner: CliRunner) -> None:
    dest = project(tmp_path, lambda text: "\ufeff" + text)
    result = runner.invoke(cli, ["config", str(dest)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Invalid statement" not in result.output


def test_a_full_exif_blames_the_maker_note_not_the_caption(
    tmp_path: Path, runner: CliRunner
) -> None:
    import piexif
    from PIL import Image

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    note = piexif.dump({"Exif": {piexif.ExifIFD.MakerNote: b"M" * 65_400}})
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, format="JPEG", exif=note)
    (imgs / "a.jpg").write_bytes(buf.getvalue())
    (imgs / "a.txt").write_text("hero, glas", encoding="utf-8")
    result = runner.invoke(cli, ["caption", "hero", str(imgs)])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 1 of 1 images failed and were left untouched:\n"
        "  - a.jpg: no room for the caption in this JPEG's EXIF: its EXIF segment is already "
        "65,448 bytes, 65,400 of them a camera maker note; with the caption (10 characters, "
        "172 bytes) it would be 65,620, over the 65,535-byte limit of one JPEG segment\n"
    )


class _LazyPool:
    """A stand-in for the caption thread pool: each job runs when its result is asked for,
    in order, so where a Ctrl-C lands is exact."""

    def __init__(self, **_: object) -> None:
        pass

    def submit(self, fn: object, *args: object) -> object:
        from concurrent.futures import Future

        future: Future[object] = Future()
        real_result = future.result

        def result(timeout: float | None = None) -> object:
            if not future.done():
                try:
                    future.set_result(fn(*args))  # type: ignore[operator]
                except BaseException as exc:
                    future.set_exception(exc)
            return real_result(timeout)

        future.result = result  # type: ignore[method-assign]
        return future

    def shutdown(self, **_: object) -> None:
        pass


def test_ctrl_c_during_caption_says_what_was_done(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It printed "Aborted!" with no count of what was done and no word that running it
    again finishes it."""
    from kohya_orchestrator.dataset import caption_apply

    imgs = images(tmp_path / "imgs", ("a.png", "b.jpg", "c.webp", "d.png", "e.jpg"))
    for txt in imgs.glob("*.txt"):
        txt.unlink()
    real = caption_apply.write_captioned
    calls = [0]

    def interrupted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(caption_apply, "write_captioned", interrupted)
    monkeypatch.setattr(caption_apply, "ThreadPoolExecutor", _LazyPool)
    result = runner.invoke(cli, ["caption", "hero", str(imgs)])
    assert result.exit_code == 130
    assert result.stderr == (
        "Interrupted: 2 of 5 images to caption were done (2 images embedded, 2 .txt files "
        "written); the other 3 are unchanged. Run the same command again to finish: it skips "
        "what is already done.\n"
    )
    monkeypatch.setattr(caption_apply, "write_captioned", real)
    again = runner.invoke(cli, ["caption", "hero", str(imgs)], catch_exceptions=False)
    assert "5 images in " in again.stdout
    assert ": 3 images embedded, 3 .txt files written, 2 already up to date." in again.stdout


def test_train_after_rename_in_the_source_says_to_prepare_again(
    tmp_path: Path, runner: CliRunner
) -> None:
    dest = project(tmp_path)
    assert runner.invoke(cli, ["rename", "hero", str(tmp_path / "imgs")]).exit_code == 0
    result = runner.invoke(cli, ["train", str(dest), "--dry-run"])
    assert result.exit_code == 1
    assert (
        f"  - 3 image(s) in {dest / 'img'} (7_hero/) are links to files that are gone (a.png, "
        "b.jpg, c.webp): the source folder changed since prepare linked them\n"
        "    hint: run `kohya-orch prepare` again (the same command) to sync DEST\n"
    ) in result.stderr
    assert "has no <repeats>_<name> folder" not in result.stderr


def test_preflight_after_caption_in_the_source_says_to_prepare_again(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kohya_orchestrator.train.preflight import run_preflight

    imgs = images(tmp_path / "imgs")
    (imgs / "a.txt").unlink()
    model = checkpoint(tmp_path / "m.safetensors")
    dest = tmp_path / "dest"
    argv = ["prepare", "hero", "--images", str(imgs), "--dest", str(dest), "--model", str(model)]
    assert runner.invoke(cli, argv).exit_code == 0
    (imgs / "a.txt").write_text("hero, glasses", encoding="utf-8")  # as `caption` would
    values = {"train_data_dir": str(dest / "img"), "caption_extension": ".txt"}
    report = run_preflight(values, "sdxl_train_network.py", probe=None)
    [captions] = [c for c in report.checks if c.name == "captions"]
    assert captions.detail == (
        f"1 of 3 image(s) in {dest / 'img'} have no .txt caption: a.png; 1 of them have one "
        "in the source folder now, which prepare has not linked yet: run `kohya-orch "
        "prepare` again (the same command) to sync DEST"
    )


def test_no_images_in_the_current_folder_names_it(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`caption_all` in an empty folder said "No images in .." (the folder `.`, a full stop)."""
    monkeypatch.chdir(tmp_path)
    for argv in (["caption", "hero"], ["captions"], ["rename", "p"]):
        result = runner.invoke(cli, argv)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: No images in {tmp_path}.\n"), result.stderr
