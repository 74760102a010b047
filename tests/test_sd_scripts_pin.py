"""`make sd-scripts`: the pin survives a plain clone; the target clones and checks out the
pinned commit, does nothing the second time, and never touches a checkout with changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from testpaths import ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make"
)
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=True
    ).stdout.strip()


def _upstream(tmp_path: Path) -> tuple[Path, str, str]:
    """A local 'sd-scripts' repository with two commits: (path, first, second)."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    (repo / "train_network.py").write_text("# one\n")
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "one", cwd=repo)
    first = _git("rev-parse", "HEAD", cwd=repo)
    (repo / "train_network.py").write_text("# two\n")
    _git("commit", "-q", "-am", "two", cwd=repo)
    return repo, first, _git("rev-parse", "HEAD", cwd=repo)


def _make(tmp_path: Path, pin: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), "sd-scripts", f"SD_SCRIPTS_PIN={pin}",
         f"SD_SCRIPTS_DEST={dest}"],
        env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _pin(tmp_path: Path, url: Path, commit: str) -> Path:
    pin = tmp_path / "sd-scripts.pin"
    pin.write_text(f"# a test pin\nurl = file://{url}\ncommit = {commit}\n")
    return pin


def test_the_pin_is_a_tracked_text_file_naming_the_kohya_ss_pin() -> None:
    tracked = _git("ls-files", "vendor", cwd=ROOT).splitlines()
    assert sorted(tracked) == ["vendor/README.md", "vendor/sd-scripts.pin"]
    text = (ROOT / "vendor" / "sd-scripts.pin").read_text()
    assert "commit = 6721028c79ee85a78b3a06dfd8954dae310a1cce" in text
    assert "url = https://github.com/kohya-ss/sd-scripts.git" in text
    assert "/vendor/sd-scripts/" in (ROOT / ".gitignore").read_text().splitlines()


def test_make_sd_scripts_clones_then_does_nothing(tmp_path: Path) -> None:
    upstream, first, _ = _upstream(tmp_path)
    dest = tmp_path / "vendor" / "sd-scripts"
    pin = _pin(tmp_path, upstream, first)
    done = _make(tmp_path, pin, dest)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"cloned file://{upstream} into {dest} at {first[:10]}\n"
    assert _git("rev-parse", "HEAD", cwd=dest) == first
    assert (dest / "train_network.py").read_text() == "# one\n"
    assert [p.name for p in dest.parent.iterdir()] == ["sd-scripts"]  # no scratch left
    again = _make(tmp_path, pin, dest)
    assert again.stdout == f"{dest} is already at {first[:10]}: nothing to do\n"


def test_make_sd_scripts_moves_a_clean_checkout_to_the_pin(tmp_path: Path) -> None:
    upstream, first, second = _upstream(tmp_path)
    dest = tmp_path / "vendor" / "sd-scripts"
    assert _make(tmp_path, _pin(tmp_path, upstream, second), dest).returncode == 0
    moved = _make(tmp_path, _pin(tmp_path, upstream, first), dest)
    assert moved.stdout == f"{dest}: moved from {second[:10]} to the pinned {first[:10]}\n"
    assert _git("rev-parse", "HEAD", cwd=dest) == first


def test_make_sd_scripts_refuses_local_changes(tmp_path: Path) -> None:
    upstream, first, second = _upstream(tmp_path)
    dest = tmp_path / "vendor" / "sd-scripts"
    assert _make(tmp_path, _pin(tmp_path, upstream, second), dest).returncode == 0
    (dest / "train_network.py").write_text("# my fix\n")
    refused = _make(tmp_path, _pin(tmp_path, upstream, first), dest)
    assert refused.returncode != 0
    assert refused.stderr.startswith(
        f"{dest} has local changes; not touched:\n M train_network.py\n"
        "Commit or stash them (or move the folder away), then run `make sd-scripts`."
    )
    assert (dest / "train_network.py").read_text() == "# my fix\n"
    assert _git("rev-parse", "HEAD", cwd=dest) == second


def test_make_sd_scripts_refuses_a_folder_that_is_not_a_checkout(tmp_path: Path) -> None:
    upstream, first, _ = _upstream(tmp_path)
    dest = tmp_path / "vendor" / "sd-scripts"
    dest.mkdir(parents=True)
    (dest / "mine.txt").write_text("keep")
    refused = _make(tmp_path, _pin(tmp_path, upstream, first), dest)
    assert refused.returncode != 0
    assert refused.stderr.startswith(f"{dest} exists and is not a git checkout")
    assert (dest / "mine.txt").read_text() == "keep"
