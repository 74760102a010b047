"""`make demo`: the whole job on an embedded default dataset, one workflow step at a time.

Each step prints the command it runs, so the demo doubles as a walk-through. Everything is
written under demo/ (git-ignored); running it again starts from a fresh copy.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "demo"
IMAGES = DEMO / "yumoto_hakone"
TRIGGER = "yumoto_hakone"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `kohya-orch ARGS` (via this interpreter), echoing the command first."""
    print(f"\n$ kohya-orch {shlex.join(args)}", flush=True)
    cmd = [sys.executable, "-m", "kohya_orchestrator", *args]
    proc = subprocess.run(cmd, text=True, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"demo: step failed with exit code {proc.returncode}")
    return proc


def step_images() -> None:
    """Step 0: a fresh folder of sample images (generated; several formats and shapes)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_sample_images import make_sample_images

    if DEMO.exists():
        shutil.rmtree(DEMO)
    made = make_sample_images(IMAGES)
    print(f"demo: generated {len(made)} sample images in {IMAGES}")


def step_rename() -> None:
    """Step 0a: rename the images to the trigger plus a number."""
    run("rename", TRIGGER, str(IMAGES), "--yes")


def main() -> None:
    step_images()
    step_rename()
    print("\ndemo: done. Everything is under", DEMO)


if __name__ == "__main__":
    main()
