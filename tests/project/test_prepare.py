"""`kohya-orch prepare`: layout, links, sync, safety, settings, model check, reports."""

from __future__ import annotations

import errno
import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.journal import new_journal, write_journal
from kohya_orchestrator.fsutil import TEMP_PREFIX
from kohya_orchestrator.project.prepare import MANIFEST_NAME

SDXL_KEYS = (
    "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
    "model.diffusion_model.input_blocks.0.0.weight",
)


def checkpoint(path: Path, keys: tuple[str, ...] = SDXL_KEYS) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({k: np.zeros((2, 2), dtype=np.float16) for k in keys}, str(path))
    return path


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`: file bytes, or the link text for symlinks."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                out[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                out[rel] = path.read_bytes()
            else:
                out[rel] = "dir"
    return out


@pytest.fixture
def project(tmp_path: Path) -> dict[str, Path]:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"png a")
    (images / "a.txt").write_text("yumoto, glasses\n")
    (images / "B.JPG").write_bytes(b"jpg b")
    (images / "B.TXT").write_text("1boy, yumoto\n")
    (images / "c.webp").write_bytes(b"webp c")
    (images / "c.npz").write_bytes(b"latents")
    (images / "notes.md").write_text("not an image")
    model = checkpoint(tmp_path / "sdxl.safetensors")
    return {"root": tmp_path, "images": images, "dest": tmp_path / "train", "model": model}


def prepare(runner: CliRunner, p: dict[str, Path], *extra: str, ok: bool = True) -> Result:
    args = ["prepare", "yumoto", "--images", str(p["images"]), "--dest", str(p["dest"])]
    args += ["--model", str(p["model"]), *extra]
    result = runner.invoke(cli, args, catch_exceptions=not ok)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_first_run_lays_out_dest(runner: CliRunner, project: dict[str, Path]) -> None:
    source = snapshot(project["images"])
    result = prepare(runner, project)
    dest, images = project["dest"], project["images"].resolve()
    assert result.stdout == (
        f"Model: {project['model']} (SDXL)\n"
        f"Prepared {dest}: img/7_yumoto/ (3 images), model/, log/\n"
        "  5 added, 0 updated, 0 removed, 0 unchanged (symlinks)\n"
        f"Settings: {dest / 'kohya-orch.toml'} written\n"
        f"Next: kohya-orch config {dest}\n"
    )
    assert snapshot(dest / "img") == {
        "7_yumoto": "dir",
        "7_yumoto/a.png": f"-> {images / 'a.png'}",
        "7_yumoto/a.txt": f"-> {images / 'a.txt'}",
        "7_yumoto/B.jpg": f"-> {images / 'B.JPG'}",
        "7_yumoto/B.txt": f"-> {images / 'B.TXT'}",
        "7_yumoto/c.webp": f"-> {images / 'c.webp'}",
    }
    assert sorted(os.listdir(dest)) == sorted(
        [MANIFEST_NAME, "img", "kohya-orch.toml", "log", "model"]
    )
    settings = tomllib.loads((dest / "kohya-orch.toml").read_text())
    assert (settings["name"], settings["trigger"], settings["repeats"]) == ("yumoto", "yumoto", 7)
    assert settings["images"] == str(images)
    assert snapshot(project["images"]) == source


def test_reports_captions_and_shared_stems(runner: CliRunner, project: dict[str, Path]) -> None:
    (project["images"] / "a.jpg").write_bytes(b"jpg a")
    result = prepare(runner, project)
    assert result.stderr == (
        "warning: 1 images have no .txt caption: c.webp\n"
        "warning: 1 captions do not start with the trigger 'yumoto': B.TXT\n"
        "warning: a.jpg and a.png share the stem 'a': sd-scripts gives them the same "
        "caption (img/7_yumoto/a.txt)\n"
    )


def test_rerun_changes_nothing_and_keeps_edited_settings(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    prepare(runner, project)
    settings = project["dest"] / "kohya-orch.toml"
    settings.write_text(settings.read_text() + "# my edit\n")
    before = snapshot(project["dest"])
    result = prepare(runner, project, "--repeats", "7")
    assert "  nothing to change: all 5 files are in place (symlinks)\n" in result.stdout
    assert f"Settings: {settings} kept (yours)\n" in result.stdout
    assert snapshot(project["dest"]) == before


def test_sync_adds_and_removes_only_its_own_files(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    prepare(runner, project)
    images, concept = project["images"], project["dest"] / "img" / "7_yumoto"
    (images / "c.webp").unlink()
    (images / "d.png").write_bytes(b"png d")
    (concept / "mine.txt").write_text("the user's own file")
    source = snapshot(images)
    result = prepare(runner, project, "-v")
    assert "  1 added, 0 updated, 1 removed, 4 unchanged (symlinks)\n" in result.stdout
    assert "  + img/7_yumoto/d.png\n  - img/7_yumoto/c.webp\n" in result.stdout
    assert sorted(os.listdir(concept)) == ["B.jpg", "B.txt", "a.png", "a.txt", "d.png", "mine.txt"]
    assert snapshot(images) == source


def test_file_in_the_way_is_refused(runner: CliRunner, project: dict[str, Path]) -> None:
    concept = project["dest"] / "img" / "7_yumoto"
    concept.mkdir(parents=True)
    (concept / "a.png").write_bytes(b"someone else's")
    before = snapshot(project["root"])
    result = prepare(runner, project, ok=False)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot prepare {project['dest']}: 1 file(s) in the way, nothing was changed.\n"
        f"  - img/7_yumoto/a.png exists and was not made by prepare from "
        f"{project['images'].resolve() / 'a.png'}\n"
        "  hint: These files were not made by prepare (or were changed since); move them away.\n"
    )
    assert snapshot(project["root"]) == before


def test_hardlink_and_copy_modes(runner: CliRunner, project: dict[str, Path]) -> None:
    prepare(runner, project, "--hardlink")
    concept, images = project["dest"] / "img" / "7_yumoto", project["images"]
    assert os.path.samefile(concept / "B.jpg", images / "B.JPG")
    assert not (concept / "B.jpg").is_symlink()
    result = prepare(runner, project, "--copy")
    assert "  0 added, 5 updated, 0 removed, 0 unchanged (copies)\n" in result.stdout
    assert not os.path.samefile(concept / "B.jpg", images / "B.JPG")
    assert (concept / "B.jpg").read_bytes() == b"jpg b"
    # A caption rewritten in the source (new inode, new time) is copied again ...
    (images / "a.txt").write_text("yumoto, glasses, smile\n")
    os.utime(images / "a.txt", ns=(1, 1))
    result = prepare(runner, project, "--copy", "-v")
    assert "  ~ img/7_yumoto/a.txt\n" in result.stdout
    assert (concept / "a.txt").read_text() == "yumoto, glasses, smile\n"
    # ... but a copy edited in DEST is the user's: never removed.
    (concept / "c.webp").write_bytes(b"edited in dest")
    (images / "c.webp").unlink()
    result = prepare(runner, project, "--copy")
    assert "warning: img/7_yumoto/c.webp was changed in DEST since prepare made it; kept\n" in (
        result.stderr
    )
    assert (concept / "c.webp").read_bytes() == b"edited in dest"


def test_hardlink_relinked_after_atomic_caption_rewrite(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    prepare(runner, project, "--hardlink")
    images, concept = project["images"], project["dest"] / "img" / "7_yumoto"
    tmp = images / ".new"
    tmp.write_text("yumoto, new caption\n")
    os.replace(tmp, images / "a.txt")  # what caption tools do: a new file, a new inode
    result = prepare(runner, project, "--hardlink")
    assert "  0 added, 1 updated, 0 removed, 4 unchanged (hard links)\n" in result.stdout
    assert (concept / "a.txt").read_text() == "yumoto, new caption\n"


def test_reg_folder_only_when_given(runner: CliRunner, project: dict[str, Path]) -> None:
    reg = project["root"] / "reg_images"
    reg.mkdir()
    (reg / "r1.png").write_bytes(b"reg 1")
    result = prepare(runner, project, "--reg", str(reg), "--class-prompt", "1boy, man")
    dest = project["dest"]
    assert f"Prepared {dest}: img/7_yumoto/ (3 images), reg/1_1boy, man/ (1 images)" in (
        result.stdout
    )
    assert os.readlink(dest / "reg" / "1_1boy, man" / "r1.png") == str(reg.resolve() / "r1.png")
    settings = tomllib.loads((dest / "kohya-orch.toml").read_text())
    assert settings["class_prompt"] == "1boy, man"
    prepare(runner, project)
    assert not (dest / "reg").exists()


def test_reg_needs_class_prompt(runner: CliRunner, project: dict[str, Path]) -> None:
    result = prepare(runner, project, "--reg", str(project["images"]), ok=False)
    assert result.exit_code == 2
    assert "Invalid value for '--class-prompt': --reg needs --class-prompt." in result.output


def test_repeats_change_moves_the_concept_folder(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    prepare(runner, project)
    prepare(runner, project, "--repeats", "10")
    assert os.listdir(project["dest"] / "img") == ["10_yumoto"]


@pytest.mark.parametrize("where", ["dest_in_images", "images_in_dest", "via_symlink"])
def test_nested_folders_refused(runner: CliRunner, project: dict[str, Path], where: str) -> None:
    if where == "dest_in_images":
        project["dest"] = project["images"] / "train"
        expected = (
            f"Error: DEST {project['dest']} is inside the images folder {project['images']}.\n"
            "  hint: Choose a DEST outside the image folder, e.g. next to it.\n"
        )
    elif where == "images_in_dest":
        project["dest"] = project["root"]
        expected = (
            f"Error: The images folder {project['images']} is inside DEST {project['root']}.\n"
            "  hint: Keep the source images outside DEST; prepare links them in.\n"
        )
    else:
        alias = project["root"] / "alias"
        alias.symlink_to(project["images"])
        project["dest"] = alias / "train"
        expected = (
            f"Error: DEST {project['dest']} is inside the images folder {project['images']}.\n"
            "  hint: Choose a DEST outside the image folder, e.g. next to it.\n"
        )
    before = snapshot(project["root"])
    result = prepare(runner, project, ok=False)
    assert result.exit_code == 1
    assert result.output == expected
    assert snapshot(project["root"]) == before


def test_model_checked_at_prepare(runner: CliRunner, project: dict[str, Path]) -> None:
    project["model"] = project["root"] / "missing.safetensors"
    result = prepare(runner, project, ok=False)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Model file not found: {project['model']}\n")
    project["model"] = checkpoint(project["root"] / "lora.safetensors", ("lora_unet_x.weight",))
    result = prepare(runner, project, ok=False)
    assert result.output.startswith(f"Error: {project['model']} is a LoRA, not a base checkpoint.")
    assert not project["dest"].exists()


def test_sd15_checkpoint_accepted(runner: CliRunner, project: dict[str, Path]) -> None:
    keys = ("cond_stage_model.transformer.text_model.x", "model.diffusion_model.input_blocks.0")
    project["model"] = checkpoint(project["root"] / "sd15.safetensors", keys)
    result = prepare(runner, project)
    assert result.stdout.startswith(f"Model: {project['model']} (SD 1.x)\n")


def test_dry_run_writes_nothing(runner: CliRunner, project: dict[str, Path]) -> None:
    before = snapshot(project["root"])
    result = prepare(runner, project, "--dry-run")
    assert "  + img/7_yumoto/B.jpg\n" in result.stdout
    assert result.stdout.endswith(
        f"Settings: {project['dest'] / 'kohya-orch.toml'} would be written\n"
        "Dry run: nothing was changed.\n"
    )
    assert snapshot(project["root"]) == before


def test_set_goes_into_new_settings_and_bad_set_changes_nothing(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    result = prepare(runner, project, "--set", "epoch=10", ok=False)
    assert result.exit_code == 1
    assert "unknown setting 'epoch'" in result.output
    assert not project["dest"].exists()
    prepare(runner, project, "--set", "epochs=10", "--trigger", "yumoto, glasses")
    settings = tomllib.loads((project["dest"] / "kohya-orch.toml").read_text())
    assert (settings["epochs"], settings["trigger"]) == (10, "yumoto, glasses")


def test_json_output(runner: CliRunner, project: dict[str, Path]) -> None:
    result = prepare(runner, project, "--json")
    data = json.loads(result.stdout)
    assert data["added"] == [
        "img/7_yumoto/a.png",
        "img/7_yumoto/a.txt",
        "img/7_yumoto/B.jpg",
        "img/7_yumoto/B.txt",
        "img/7_yumoto/c.webp",
    ]
    assert (data["images"], data["settings_written"], data["model_family"]) == (3, True, "SDXL")
    assert data["warnings"] == [
        "1 images have no .txt caption: c.webp",
        "1 captions do not start with the trigger 'yumoto': B.TXT",
    ]


def test_interrupted_rename_in_images_is_refused(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    write_journal(project["images"], new_journal([("a.png", "p_1.png")], "p"))
    result = prepare(runner, project, ok=False)
    assert result.exit_code == 1
    assert result.output == (
        f"Error: A rename in {project['images'].resolve()} was interrupted.\n"
        f"  hint: Run `kohya-orch rename PREFIX {project['images'].resolve()}` to finish it "
        "(or --undo), then prepare.\n"
    )
    assert not project["dest"].exists()


def test_nothing_written_outside_dest(runner: CliRunner, project: dict[str, Path]) -> None:
    outside = {k: v for k, v in snapshot(project["root"]).items() if not k.startswith("train")}
    prepare(runner, project, "--copy")
    prepare(runner, project)
    after = {k: v for k, v in snapshot(project["root"]).items() if not k.startswith("train")}
    assert after == outside


def test_files_recorded_before_a_kill_are_adopted(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    # The manifest is written with the planned files before they are made; a kill then
    # leaves records without the copy's size and time. The next run adopts what is there.
    prepare(runner, project, "--copy")
    manifest_path = project["dest"] / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    for record in manifest["files"].values():
        for key in ("ino", "dev", "size", "mtime_ns", "source_size", "source_mtime_ns"):
            record.pop(key)
    manifest_path.write_text(json.dumps(manifest))
    result = prepare(runner, project, "--copy")
    assert "  nothing to change: all 5 files are in place (copies)\n" in result.stdout


def test_rename_after_prepare_is_synced(runner: CliRunner, project: dict[str, Path]) -> None:
    (project["images"] / "notes.md").unlink()
    prepare(runner, project)
    renamed = runner.invoke(cli, ["rename", "yumoto", str(project["images"])])
    assert renamed.exit_code == 0, renamed.output
    result = prepare(runner, project)
    assert "  5 added, 0 updated, 5 removed, 0 unchanged (symlinks)\n" in result.stdout
    concept = project["dest"] / "img" / "7_yumoto"
    assert sorted(os.listdir(concept)) == [
        "yumoto_1.png",
        "yumoto_1.txt",
        "yumoto_2.jpg",
        "yumoto_2.txt",
        "yumoto_3.webp",
    ]
    assert (concept / "yumoto_2.jpg").read_bytes() == b"jpg b"


def test_os_error_midway_says_what_was_done(
    runner: CliRunner, project: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = snapshot(project["images"])
    real = os.symlink
    made = [0]

    def symlink(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        made[0] += 1
        if made[0] >= 3:  # fault injection: the disk is full from the third link on
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(dst))
        real(src, dst, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "symlink", symlink)
        result = prepare(runner, project, ok=False)
    dest = project["dest"]
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: prepare stopped in {dest} at img/7_yumoto/B.jpg: No space left on device. "
        "2 of 5 files were made; the source folders were not changed.\n"
        "  hint: Free some space or fix the permissions in DEST, then run the same command "
        "again; it picks up where this one stopped.\n"
    )
    assert snapshot(project["images"]) == source
    assert not [p for p in dest.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    again = prepare(runner, project)
    assert "  3 added, 0 updated, 0 removed, 2 unchanged (symlinks)\n" in again.stdout


def test_copies_adopted_after_a_stop_get_fresh_manifest_records(
    runner: CliRunner, project: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(runner, project, "--copy")
    manifest_path = project["dest"] / MANIFEST_NAME
    complete = json.loads(manifest_path.read_text())
    stripped = {k: {"source": v["source"], "mode": "copy"} for k, v in complete["files"].items()}
    manifest_path.write_text(json.dumps({"version": 1, "files": stripped}))
    prepare(runner, project, "--copy")
    assert json.loads(manifest_path.read_text()) == complete


def test_nfc_nfd_twin_stems_are_reported(runner: CliRunner, project: dict[str, Path]) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    (project["images"] / f"{nfc}.png").write_bytes(b"png nfc")
    (project["images"] / f"{nfd}.jpg").write_bytes(b"jpg nfd")
    result = prepare(runner, project)
    assert (
        f"warning: {nfd}.jpg and {nfc}.png share the stem {nfd!r}: sd-scripts gives them the "
        f"same caption (img/7_yumoto/{nfd}.txt)\n"
    ) in result.stderr


def _request(p: dict[str, Path], mode: str) -> Any:
    from kohya_orchestrator.project.prepare import PrepareRequest

    return PrepareRequest("yumoto", p["images"], p["dest"], p["model"], mode=mode)


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_file_appearing_between_plan_and_apply_is_left_untouched(
    runner: CliRunner, project: dict[str, Path], mode: str
) -> None:
    from kohya_orchestrator.project.apply import apply_prepare, left_untouched_error
    from kohya_orchestrator.project.prepare import plan_prepare

    plan = plan_prepare(_request(project, mode))
    theirs = project["dest"] / "img/7_yumoto/a.txt"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("mine\n")
    apply_prepare(plan)
    assert theirs.read_text() == "mine\n" and not theirs.is_symlink()
    assert plan.skipped == ["img/7_yumoto/a.txt"]
    assert "img/7_yumoto/a.txt" not in [link.target for link in plan.add]
    assert left_untouched_error(plan).render() == (
        f"1 file(s) in {plan.dest} appeared or changed while prepare ran; they were left "
        "untouched.\n"
        "  - img/7_yumoto/a.txt\n"
        "  hint: Move them out of DEST (they are not prepare's), then run the same command "
        "again."
    )
    manifest = json.loads((project["dest"] / MANIFEST_NAME).read_text())["files"]
    assert "img/7_yumoto/a.txt" not in manifest and "img/7_yumoto/a.png" in manifest
    assert not [p for p in theirs.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
    # The next run sees the user's file as in the way, never as its own to replace.
    result = prepare(runner, project, f"--{mode}", ok=False)
    assert result.exit_code == 1
    assert theirs.read_text() == "mine\n"


def test_file_changed_between_plan_and_apply_is_not_replaced(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    from kohya_orchestrator.project.apply import apply_prepare
    from kohya_orchestrator.project.prepare import plan_prepare

    prepare(runner, project, "--copy")
    (project["images"] / "a.txt").write_text("yumoto, glasses, suit\n")
    plan = plan_prepare(_request(project, "copy"))
    assert [link.target for link in plan.replace] == ["img/7_yumoto/a.txt"]
    copy = project["dest"] / "img/7_yumoto/a.txt"
    copy.write_text("yumoto, edited in DEST\n")
    apply_prepare(plan)
    assert copy.read_text() == "yumoto, edited in DEST\n"
    assert (plan.skipped, plan.replace) == (["img/7_yumoto/a.txt"], [])
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_one_target_from_two_sources_is_refused(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    (project["images"] / "a.PNG").write_bytes(b"png A")
    result = prepare(runner, project, ok=False)
    assert result.exit_code == 1
    images = project["images"].resolve()
    assert result.output == (
        f"Error: Cannot prepare {project['dest']}: 1 file(s) would come from two sources, "
        "nothing was changed.\n"
        "  - img/7_yumoto/a.png would be made from both a.PNG and a.png\n"
        f"  hint: Give the images distinct names, e.g. `kohya-orch rename PREFIX {images}`.\n"
    )
    assert not project["dest"].exists()


def test_caption_shared_by_two_images_is_linked_once(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    (project["images"] / "a.jpg").write_bytes(b"jpg a")
    result = prepare(runner, project, "--json")
    assert json.loads(result.stdout)["added"].count("img/7_yumoto/a.txt") == 1
    result = prepare(runner, project, "--json")
    data = json.loads(result.stdout)
    assert (data["added"], data["updated"], data["removed"], data["unchanged"]) == ([], [], [], 6)


def test_trigger_rule_is_the_caption_commands_rule(
    runner: CliRunner, project: dict[str, Path]
) -> None:
    # One tag "yumoto glasses" does not start with the trigger tag; a BOM and odd
    # spacing before "yumoto ," do not hide it. `captions` agrees on both.
    (project["images"] / "a.txt").write_text("yumoto glasses, suit\n")
    (project["images"] / "B.TXT").write_text("\ufeff  yumoto ,1boy\n")
    result = prepare(runner, project)
    assert result.stderr == (
        "warning: 1 images have no .txt caption: c.webp\n"
        "warning: 1 captions do not start with the trigger 'yumoto': a.txt\n"
    )
