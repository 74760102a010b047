"""The sd-scripts checkout in use: where it is found, and the commit it is at.

Found as `train` finds it: --sd-scripts DIR, then $KOHYA_SD_SCRIPTS, then the project's own
vendor/sd-scripts, then a kohya_ss GUI install's sd-scripts folder. The commit is read from
the checkout's git files (.git/HEAD, a submodule's `gitdir:` file, packed refs).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The project checkout's pin file: its presence says REPO_ROOT is a source checkout of
# kohya-orch (not site-packages, where a vendor/ folder would be somebody else's).
PIN_FILE = Path("vendor") / "sd-scripts.pin"


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
    repo_root: Path | None = None,
) -> tuple[Path | None, str]:
    """The sd-scripts folder to use and where it came from (or None and what was tried).

    vendor/sd-scripts counts only next to a source checkout of kohya-orch (its pin file
    beside it), never relative to the current folder or to site-packages.
    """
    repo_root = REPO_ROOT if repo_root is None else repo_root
    if explicit is not None:
        return explicit.expanduser().absolute(), "--sd-scripts"
    candidates: list[tuple[Path, str]] = []
    env = environ.get("KOHYA_SD_SCRIPTS")
    if env:
        candidates.append((Path(env).expanduser().absolute(), "$KOHYA_SD_SCRIPTS"))
    if (repo_root / PIN_FILE).is_file():
        candidates.append((repo_root / "vendor" / "sd-scripts", "vendor/ (`make sd-scripts`)"))
    candidates.append((home / "kohya_ss" / "sd-scripts", "the kohya_ss GUI install"))
    for folder, source in candidates:
        if (folder / script).is_file():
            return folder, source
    if env:
        return Path(env).expanduser().absolute(), "$KOHYA_SD_SCRIPTS"
    tried = ", ".join(str(folder) for folder, _ in candidates)
    return None, tried


def locate_python(explicit: str | None, sd_scripts: Path | None) -> tuple[str, str]:
    """The Python to run sd-scripts with, and where it came from."""
    if explicit:
        return explicit, "--python"
    if sd_scripts is not None:
        for base in (sd_scripts, sd_scripts.parent):
            for venv in ("venv", ".venv"):
                candidate = base / venv / "bin" / "python"
                if candidate.is_file():
                    return str(candidate), f"the venv at {base / venv}"
    return sys.executable, "the Python running kohya-orch"


# The packages whose versions sd-scripts pins and that break it when they differ.
PINNED_PACKAGES = ("torch", "accelerate", "transformers", "diffusers")


def requirement_pins(folder: Path) -> dict[str, str]:
    """`name -> version` of the `name==version` lines of the checkout's requirements.txt
    (`diffusers[torch]==0.32.1` pins diffusers); {} when there is none."""
    try:
        text = (folder / "requirements.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        name, sep, version = line.partition("==")
        if sep and name:
            pins[name.split("[", 1)[0].strip().lower()] = version.strip()
    return pins
