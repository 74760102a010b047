"""`make sd-scripts`: clone the pinned sd-scripts into vendor/sd-scripts, at the pinned commit.

Reads the pin file (`url = ...`, `commit = ...`). Does nothing when the checkout is already
at that commit; moves a clean checkout to it; refuses to touch a folder that is not a git
checkout or has local changes. A clone is made beside the target and renamed into place, so
an interrupted clone never leaves half a checkout. Needs git and the network (or a local URL).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def read_pin(path: Path) -> tuple[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if "url" not in values or "commit" not in values:
        raise SystemExit(f"{path}: needs `url = ...` and `commit = ...` lines")
    return values["url"], values["commit"]


def git(*args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.rstrip()


def fetch(url: str, commit: str, dest: Path) -> str:
    if dest.exists():
        if not (dest / ".git").exists():
            raise SystemExit(
                f"{dest} exists and is not a git checkout: move it away, then run "
                "`make sd-scripts` again"
            )
        changes = git("status", "--porcelain", "--untracked-files=no", cwd=dest)
        if changes:
            raise SystemExit(
                f"{dest} has local changes; not touched:\n{changes}\n"
                "Commit or stash them (or move the folder away), then run `make sd-scripts`."
            )
        head = git("rev-parse", "HEAD", cwd=dest)
        if head == commit:
            return f"{dest} is already at {commit[:10]}: nothing to do"
        if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=dest,
                          capture_output=True, check=False).returncode != 0:  # fmt: skip
            git("fetch", "--quiet", url, cwd=dest)
        git("checkout", "--quiet", "--detach", commit, cwd=dest)
        return f"{dest}: moved from {head[:10]} to the pinned {commit[:10]}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".sd-scripts-clone-", dir=dest.parent))
    try:
        git("clone", "--quiet", "--no-checkout", url, str(scratch / "repo"))
        git("checkout", "--quiet", "--detach", commit, cwd=scratch / "repo")
        (scratch / "repo").rename(dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return f"cloned {url} into {dest} at {commit[:10]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pin", type=Path, default=Path("vendor/sd-scripts.pin"))
    parser.add_argument("--dest", type=Path, default=Path("vendor/sd-scripts"))
    parser.add_argument("--url", help="clone from here instead of the pin's URL (a mirror)")
    options = parser.parse_args()
    url, commit = read_pin(options.pin)
    print(fetch(options.url or url, commit, options.dest.absolute()))


if __name__ == "__main__":
    sys.exit(main())
