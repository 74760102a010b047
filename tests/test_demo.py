"""`make demo` tells the truth: a succeeding demo prints no `Error:` line and needs no torch
(slow: it runs the whole demo; `make test-slow`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from testpaths import ROOT


@pytest.mark.slow
def test_the_demo_prints_no_error_and_imports_no_torch(tmp_path: os.PathLike[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SD_SCRIPTS", "MODEL", "SD_PYTHON")}
    # A `torch` that fails on import: the demo (and every command it runs) must not need it.
    blocker = os.path.join(str(tmp_path), "torch")
    os.makedirs(blocker)
    with open(os.path.join(blocker, "__init__.py"), "w") as handle:
        handle.write("raise ImportError('the demo must not import torch')\n")
    env["PYTHONPATH"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Error:" not in output
    assert "STAND-IN checkpoint (SDXL key names, zero weights; not a model)" in output
    assert "truncated" not in output
