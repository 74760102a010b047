"""Opt-in: the rendered configs through the real sd-scripts of each commit users have.

Set SD_SCRIPTS_DIR to one or more checkouts (joined with os.pathsep) and SD_SCRIPTS_PYTHON to
a Python with their requirements (torch on the CPU is enough). For each tree and each
profile, sd-scripts' own parser and reader read the rendered SDXL and SD 1.x configs, and its
own optimizer path (networks.lora on tiny stand-in modules, prepare_optimizer_params, the
optimizer, the scheduler) runs two steps without error.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from testpaths import TESTS

from kohya_orchestrator.config.profiles import PROFILES
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.project.render import build_config, write_config

from .test_render import make_project

TREES = [Path(p) for p in os.environ.get("SD_SCRIPTS_DIR", "").split(os.pathsep) if p]
PYTHON = os.environ.get("SD_SCRIPTS_PYTHON", "")
pytestmark = pytest.mark.skipif(
    not (TREES and PYTHON), reason="set SD_SCRIPTS_DIR (checkouts) and SD_SCRIPTS_PYTHON"
)
SEED = ("learning_rate=0,000025", "unet_lr=0,000025", "text_encoder_lr=0,000025")


@pytest.mark.parametrize("family", ["sdxl", "sd1"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_real_optimizer_path_of_every_tree(tmp_path: Path, family: str, profile: str) -> None:
    dest = make_project(tmp_path, family, (*SEED, f"profile={profile}"))
    for tree in TREES:
        rendered = build_config(Layout.at(dest), sd_scripts=tree, python=PYTHON)
        assert rendered.report.errors == [], tree
        write_config(rendered, Layout.at(dest))
        proc = subprocess.run(
            [PYTHON, str(TESTS / "sdscripts_runner.py"), str(tree), rendered.script,
             str(dest / "config.toml")],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, (tree, proc.stderr[-3000:])
        line = next(x for x in proc.stdout.splitlines() if x.startswith("RUNNER "))
        data = json.loads(line.split(" ", 1)[1])
        read = data["read"]
        assert read["text_encoder_lr"] == 2.5e-05, tree
        assert read["max_train_epochs"] == 15 and read["network_dim"] == 16
        assert all(isinstance(lr, float) and lr > 0 for lr in data["lrs"]), (tree, data["lrs"])
