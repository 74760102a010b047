"""`kohya-orch rename` and `rename_all` on real folders: output, flags, errors."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.dataset.journal import JOURNAL_NAME
from kohya_orchestrator.dataset.rename import iter_apply, plan_folder
from kohya_orchestrator.fsutil import TEMP_PREFIX

FILES = {
    "IMG 10.JPG": b"ten",
    "IMG 2.png": b"two",
    "IMG 2.txt": b"caption two",
    "été.webp": b"summer",
}


def make(folder: Path, files: dict[str, bytes] = FILES) -> Path:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


RENAMED = {
    "p_1.png": b"two",
    "p_1.txt": b"caption two",
    "p_2.jpg": b"ten",
    "p_3.webp": b"summer",
}


def test_rename_and_rerun(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    result = runner.invoke(cli, ["rename", "p", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == (
        f"Renamed 3 images and 1 sidecar file in {tmp_path}.\n"
        f"Undo with: kohya-orch rename --undo {tmp_path}\n"
    )
    assert visible(tmp_path) == RENAMED
    again = runner.invoke(cli, ["rename", "p", str(tmp_path)], catch_exceptions=False)
    assert (
        again.output == f"Nothing to rename: all 3 images in {tmp_path} are already named p_<n>.\n"
    )
    assert visible(tmp_path) == RENAMED


def test_verbose_lists_renames(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    (tmp_path / "p_7.png").write_bytes(b"seven")
    result = runner.invoke(cli, ["rename", "p", str(tmp_path), "-v"], catch_exceptions=False)
    assert result.output == (
        f"Renamed 3 images and 1 sidecar file in {tmp_path}; 1 already named.\n"
        "  IMG 2.png -> p_08.png\n"
        "  IMG 2.txt -> p_08.txt\n"
        "  IMG 10.JPG -> p_09.jpg\n"
        "  été.webp -> p_10.webp\n"
        f"Undo with: kohya-orch rename --undo {tmp_path}\n"
    )


def test_dry_run_changes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    result = runner.invoke(cli, ["rename", "p", str(tmp_path), "--dry-run"], catch_exceptions=False)
    assert result.output == (
        f"Would rename 3 images and 1 sidecar file in {tmp_path}.\n"
        "  IMG 2.png -> p_1.png\n"
        "  IMG 2.txt -> p_1.txt\n"
        "  IMG 10.JPG -> p_2.jpg\n"
        "  été.webp -> p_3.webp\n"
        "Dry run: nothing was changed.\n"
    )
    assert visible(tmp_path) == FILES
    assert not (tmp_path / JOURNAL_NAME).exists()


def test_json_output(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    result = runner.invoke(cli, ["rename", "p", str(tmp_path), "--json"], catch_exceptions=False)
    assert json.loads(result.output) == {
        "folder": str(tmp_path),
        "prefix": "p",
        "dry_run": False,
        "width": 1,
        "images": 3,
        "images_renamed": 3,
        "sidecars_renamed": 1,
        "kept": 0,
        "renamed": [
            {"from": "IMG 2.png", "to": "p_1.png"},
            {"from": "IMG 2.txt", "to": "p_1.txt"},
            {"from": "IMG 10.JPG", "to": "p_2.jpg"},
            {"from": "été.webp", "to": "p_3.webp"},
        ],
        "recovered": 0,
    }


def test_undo_restores_names(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    runner.invoke(cli, ["rename", "p", str(tmp_path)], catch_exceptions=False)
    dry = runner.invoke(cli, ["rename", "--undo", str(tmp_path), "--dry-run"])
    assert dry.output.startswith(f"Would restore the old names of 4 files in {tmp_path}.\n")
    assert visible(tmp_path) == RENAMED
    result = runner.invoke(cli, ["rename", "--undo", str(tmp_path)], catch_exceptions=False)
    assert result.output == f"Restored the old names of 4 files in {tmp_path}.\n"
    assert visible(tmp_path) == FILES
    again = runner.invoke(cli, ["rename", "--undo", str(tmp_path)])
    assert again.exit_code == 1
    assert again.output == (
        f"Error: Nothing to undo in {tmp_path}: the last rename was already undone.\n"
    )


def test_interrupted_rename_is_completed_first(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    list(islice(iter_apply(plan_folder(tmp_path, "p")), 3))
    (tmp_path / "new.png").write_bytes(b"new")
    dry = runner.invoke(cli, ["rename", "p", str(tmp_path), "--dry-run"], catch_exceptions=False)
    assert dry.output == (
        "An interrupted rename of 4 files would be completed first.\n"
        f"Would rename 1 image in {tmp_path}; 3 already named.\n"
        "  new.png -> p_4.png\n"
        "Dry run: nothing was changed.\n"
    )
    result = runner.invoke(cli, ["rename", "p", str(tmp_path)], catch_exceptions=False)
    assert result.output == (
        "Completed an interrupted rename of 4 files first.\n"
        f"Renamed 1 image in {tmp_path}; 3 already named.\n"
        f"Undo with: kohya-orch rename --undo {tmp_path}\n"
    )
    assert visible(tmp_path) == {**RENAMED, "p_4.png": b"new"}


def test_collisions_refused_with_every_problem(runner: CliRunner, tmp_path: Path) -> None:
    files = {"a.jpg": b"1", "a.png": b"2", "b.png": b"3", "b.txt": b"4", "p_3.txt": b"5"}
    make(tmp_path, files)
    result = runner.invoke(cli, ["rename", "p", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot rename in {tmp_path}: 2 problems found, nothing was changed.\n"
        "  - a.jpg and a.png share the stem 'a' (one caption file for two images)\n"
        "  - b.txt -> p_3.txt: p_3.txt already exists and is not renamed\n"
        "  hint: Move, rename or delete the files listed, then run the command again.\n"
    )
    assert visible(tmp_path) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_bad_prefix(runner: CliRunner, tmp_path: Path) -> None:
    make(tmp_path)
    result = runner.invoke(cli, ["rename", "a/b", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        "Error: Invalid prefix 'a/b': it contains a path separator ('/').\n"
        "  hint: Use letters, digits, '_' or '-', for example yumoto_hakone.\n"
    )
    assert visible(tmp_path) == FILES


def test_missing_prefix_and_folder(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["rename"])
    assert result.exit_code == 2
    assert "Missing argument 'PREFIX'." in result.output
    result = runner.invoke(cli, ["rename", "p", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Folder not found: {tmp_path / 'nope'}\n"
        "  hint: Check the path, or cd into the image folder.\n"
    )


def test_rename_all_alias_renames_the_current_folder(tmp_path: Path) -> None:
    make(tmp_path)
    code = "from kohya_orchestrator.cli import rename_all_main; rename_all_main()"
    out = subprocess.run(
        [sys.executable, "-c", code, "p", "--yes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == (
        f"Renamed 3 images and 1 sidecar file in {tmp_path}.\n"
        f"Undo with: kohya-orch rename --undo {tmp_path}\n"
    )
    assert visible(tmp_path) == RENAMED


def _run_on_a_terminal(folder: Path, answer: bytes, *extra: str) -> tuple[int, str]:
    """Run `kohya-orch rename p FOLDER` with a pseudo-terminal as stdin; answer the prompt."""
    import os
    import pty

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kohya_orchestrator", "rename", "p", str(folder), *extra],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        os.write(master, answer)
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    return proc.returncode, out.decode()


def test_confirmation_on_a_terminal_for_many_files(tmp_path: Path) -> None:
    files = {f"img {i}.png": b"%d" % i for i in range(120)}
    make(tmp_path, files)
    code, out = _run_on_a_terminal(tmp_path, b"n\n")
    assert code == 1
    assert out.startswith(f"Rename 120 images in {tmp_path}? [y/N]: ")
    assert out.endswith("Aborted!\n")
    assert visible(tmp_path) == files
    code, out = _run_on_a_terminal(tmp_path, b"y\n")
    assert code == 0
    assert "Renamed 120 images in" in out
    assert visible(tmp_path)["p_001.png"] == b"0"


def test_yes_skips_the_confirmation(tmp_path: Path) -> None:
    make(tmp_path, {f"img {i}.png": b"%d" % i for i in range(120)})
    code, out = _run_on_a_terminal(tmp_path, b"", "--yes")
    assert code == 0
    assert out.startswith("Renamed 120 images in")


def _rename_fails_after(monkeypatch: pytest.MonkeyPatch, calls: int, code: int) -> None:
    """Fault injection: the OS refuses the `calls`-th os.rename onwards (disk full...)."""
    real = os.rename
    done = [0]

    def rename(src: Any, dst: Any) -> None:
        done[0] += 1
        if done[0] >= calls:
            raise OSError(code, os.strerror(code), os.fspath(src), None, os.fspath(dst))
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)


def test_os_error_midway_says_how_to_finish_or_undo(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path)
    with monkeypatch.context() as m:
        _rename_fails_after(m, 3, errno.ENOSPC)
        result = runner.invoke(cli, ["rename", "p", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Renaming in {tmp_path} stopped at IMG 10.JPG -> p_2.jpg: No space left on "
        "device. The journal .kohya-orch-rename.json records every move; no file is lost.\n"
        "  hint: Free some space or fix the folder's permissions, then run the same command "
        f"again to finish, or `kohya-orch rename --undo {tmp_path}` to restore the old names.\n"
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]
    again = runner.invoke(cli, ["rename", "p", str(tmp_path)], catch_exceptions=False)
    assert again.output.startswith("Completed an interrupted rename of 4 files first.\n")
    assert visible(tmp_path) == RENAMED


def test_os_error_during_undo_says_how_to_finish(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path)
    runner.invoke(cli, ["rename", "p", str(tmp_path)], catch_exceptions=False)
    with monkeypatch.context() as m:
        _rename_fails_after(m, 2, errno.EACCES)
        result = runner.invoke(cli, ["rename", "--undo", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Restoring the old names in {tmp_path} stopped at p_1.txt -> IMG 2.txt: "
        "Permission denied. The journal .kohya-orch-rename.json records every move; "
        "no file is lost.\n"
        "  hint: Free some space or fix the folder's permissions, then run "
        f"`kohya-orch rename --undo {tmp_path}` again to finish.\n"
    )
    runner.invoke(cli, ["rename", "--undo", str(tmp_path)], catch_exceptions=False)
    assert visible(tmp_path) == FILES


def test_journal_not_written_changes_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path)
    real = os.open

    def no_space(path: Any, flags: int, *args: Any) -> int:
        # The lock file is made first (there is room for it); the journal's temp is not.
        if flags & os.O_CREAT and not os.fspath(path).endswith(".kohya-orch.lock"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))
        return real(path, flags, *args)

    with monkeypatch.context() as m:
        m.setattr(os, "open", no_space)
        result = runner.invoke(cli, ["rename", "p", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot write the rename journal {tmp_path / JOURNAL_NAME}: No space left on "
        "device; nothing was renamed.\n"
        "  hint: Free some space or fix the folder's permissions, then run the command again.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)


def test_new_name_over_255_bytes_is_refused_at_plan_time(runner: CliRunner, tmp_path: Path) -> None:
    long_suffix = "." + "s" * 60
    files = {"a.png": b"png", f"a{long_suffix}": b"sidecar", "b.png": b"png"}
    make(tmp_path, files)
    prefix = "é" * 100  # 200 bytes in UTF-8
    result = runner.invoke(cli, ["rename", prefix, str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: Cannot rename in {tmp_path}: 1 problem found, nothing was changed.\n"
        f"  - a{long_suffix} -> {prefix}_1{long_suffix}: the new name is 263 bytes long "
        "(at most 255)\n"
        "  hint: Use a shorter prefix; move, rename or delete the files listed, then run the "
        "command again.\n"
    )
    assert visible(tmp_path) == files


def test_unexpected_os_error_is_a_message_traceback_only_with_verbose(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(tmp_path)

    def denied(path: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    monkeypatch.setattr(os, "scandir", denied)
    result = runner.invoke(cli, ["rename", "p", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path}: Permission denied\n"
        "  hint: the command stopped there. Free some space or fix the permissions, then run "
        "it again (--verbose shows the traceback).\n"
    )
    verbose = runner.invoke(cli, ["rename", "p", str(tmp_path), "--verbose"])
    assert verbose.exit_code == 1
    assert "Traceback (most recent call last):" in verbose.output
    assert verbose.output.endswith("(--verbose shows the traceback).\n")
    assert visible(tmp_path) == FILES
