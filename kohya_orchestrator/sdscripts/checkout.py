"""The sd-scripts checkout in use: where it is found, and the commit it is at.

Found as `train` finds it: --sd-scripts DIR, then $KOHYA_SD_SCRIPTS, then the project's own
vendor/sd-scripts, then a kohya_ss GUI install's sd-scripts folder. The commit is read from
the checkout's git files (.git/HEAD, a submodule's `gitdir:` file, packed refs).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def sd_scripts_commit(folder: Path) -> str | None:
    """The commit of a git checkout, read from .git files (a submodule's gitdir too), else git."""
    git = folder / ".git"
    try:
        if git.is_file():  # a submodule or worktree: "gitdir: <path>"
            text = git.read_text().strip()
            if text.startswith("gitdir:"):
                git = (folder / text.split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        ref_file = git / ref
        if ref_file.is_file():
            return ref_file.read_text().strip()
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        pass
    try:
        proc = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def locate_sd_scripts(
    script: str,
    explicit: Path | None,
    environ: Mapping[str, str],
    home: Path,
    repo_root: Path = REPO_ROOT,
) -> tuple[Path | None, str]:
    """The sd-scripts folder to use and where it came from (or None and what was tried)."""
    if explicit is not None:
        return explicit, "--sd-scripts"
    candidates: list[tuple[Path, str]] = []
    if environ.get("KOHYA_SD_SCRIPTS"):
        candidates.append((Path(environ["KOHYA_SD_SCRIPTS"]), "$KOHYA_SD_SCRIPTS"))
    candidates.append((repo_root / "vendor" / "sd-scripts", "the vendor/sd-scripts submodule"))
    candidates.append((home / "kohya_ss" / "sd-scripts", "the kohya_ss GUI install"))
    for folder, source in candidates:
        if (folder / script).is_file():
            return folder, source
    if environ.get("KOHYA_SD_SCRIPTS"):
        return Path(environ["KOHYA_SD_SCRIPTS"]), "$KOHYA_SD_SCRIPTS"
    tried = ", ".join(str(folder) for folder, _ in candidates)
    return None, tried
