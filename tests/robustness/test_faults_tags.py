"""Kill trials for `tags` (a bulk edit) and `tag` (the WD14 tagger's merge), as
test_faults_more.py does for the other writers.

Each trial copies the 100-image dataset, starts the real command, SIGKILLs it at a seeded
moment within one uninterrupted run (odd seeds after the planning, where the writes are),
checks that every file is as it was or as an uninterrupted run leaves it (never partial,
never lost, never duplicated), runs the command again and checks that the result equals an
uninterrupted run with no temp or lock file left. `tag` runs the stand-in tagger
(tests/tinytagger.py: a tiny ONNX model through onnxruntime) in a scratch folder outside
the dataset, so a kill during the tagging leaves the dataset as it was.

`make faults` runs 100 trials of each; `make test` one each.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from faultkit import CLI, TRIGGER
from faultrun import (
    Pristine,
    make_pristine,
    summary,  # noqa: F401 (the session fixture that prints the totals)
)
from testpaths import TESTS

from robustness.test_faults_more import CAPTION_IMAGES, Target, _baseline, _trial

FAST_SEEDS = (1,)
FULL = 100


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return make_pristine(tmp_path_factory, images=CAPTION_IMAGES)


@pytest.fixture(scope="module")
def targets(pristine: Pristine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    base = tmp_path_factory.mktemp("tag-baselines")

    def dataset(root: Path) -> None:
        shutil.copytree(pristine.source, root / "data")

    out = {
        "tags": _baseline(
            "tags",
            base,
            dataset,
            lambda root: [
                *(*CLI, "tags", str(root / "data"), "add", "solo, smile", "--trigger", TRIGGER),
            ],
            lambda root: root / "data",
            dry_run=True,
        )
    }
    if _has_onnx():
        import tinytagger

        tool = base / "tool"
        tinytagger.build_model(tool / "models" / tinytagger.REPO.replace("/", "_"))
        (tool / "sd-scripts" / "finetune").mkdir(parents=True)
        shutil.copyfile(
            TESTS / "tinytagger.py", tool / "sd-scripts/finetune/tag_images_by_wd14_tagger.py"
        )
        out["tag"] = _baseline(
            "tag",
            base,
            dataset,
            lambda root: [
                *(*CLI, "tag", str(root / "data"), TRIGGER, "--model-dir", str(tool / "models")),
                *("--sd-scripts", str(tool / "sd-scripts"), "--python", sys.executable),
            ],
            lambda root: root / "data",
            dry_run=True,
        )
    return out


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _target(targets: dict[str, Target], command: str) -> Target:
    if command not in targets:
        pytest.skip("onnx and onnxruntime are not installed (the `tagger` extra)")
    return targets[command]


@pytest.mark.parametrize("seed", FAST_SEEDS)
@pytest.mark.parametrize("command", ["tags", "tag"])
def test_kill(tmp_path: Path, targets: dict[str, Target], command: str, seed: int) -> None:
    _trial(tmp_path, _target(targets, command), seed)


@pytest.mark.faults
@pytest.mark.parametrize("seed", range(7000, 7000 + FULL))
@pytest.mark.parametrize("command", ["tags", "tag"])
def test_kill_many(tmp_path: Path, targets: dict[str, Target], command: str, seed: int) -> None:
    _trial(tmp_path, _target(targets, command), seed)
