"""Several concepts: prepare takes several image (and regularisation) folders, each with its
own repeats and class tokens; plan, validate, the captions check and the run record see all."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from projectfactory import make_images, make_model

from kohya_orchestrator.cli import cli
from kohya_orchestrator.config.concepts import Concept, parse_concept_arg
from kohya_orchestrator.config.settings import load_settings
from kohya_orchestrator.layout import Layout


def test_concept_arguments() -> None:
    assert parse_concept_arg("~/a", 7) == Concept("~/a", 7, "")
    assert parse_concept_arg("/data/a:3", 7) == Concept("/data/a", 3, "")
    assert parse_concept_arg("/data/a:3:hakone casual", 7) == Concept("/data/a", 3, "hakone casual")
    assert parse_concept_arg("/data/x:y:2:cls", 7) == Concept("/data/x:y", 2, "cls")
    with pytest.raises(ValueError) as err:
        parse_concept_arg("/data/a:0", 7)
    assert str(err.value) == "'/data/a:0': repeats must be at least 1"


@pytest.fixture
def three(tmp_path: Path, runner: CliRunner) -> Path:
    suit = make_images(tmp_path / "suit", "suit", 2, "hakone")
    casual = make_images(tmp_path / "casual", "casual", 3, "hakone")
    reg = make_images(tmp_path / "reg", "man", 2, "1boy")
    model = make_model(tmp_path / "base.safetensors")
    dest = tmp_path / "train"
    result = runner.invoke(
        cli,
        [
            "prepare",
            "hakone",
            "--images",
            f"{suit}:7",
            "--images",
            f"{casual}:3:hakone_casual",
            "--reg",
            f"{reg}:1",
            "--class-prompt",
            "1boy",
            "--dest",
            str(dest),
            "--model",
            str(model),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == (
        f"Prepared {dest}: img/7_hakone/ (2 images), img/3_hakone_casual/ (3 images), "
        "reg/1_1boy/ (2 images), model/, log/"
    )
    return dest


def test_prepare_writes_every_concept_and_the_settings_keep_them(three: Path) -> None:
    assert sorted(p.name for p in (three / "img").iterdir()) == ["3_hakone_casual", "7_hakone"]
    assert len(list((three / "img" / "3_hakone_casual").glob("*.png"))) == 3
    text = (three / "kohya-orch.toml").read_text()
    doc = tomllib.loads(text)
    assert doc["concepts"] == [
        {"images": str(three.parent / "casual"), "repeats": 3, "class_tokens": "hakone_casual"}
    ]
    assert "concepts = [\n  {" in text  # one table per line: appended lines stay top-level
    settings = load_settings(Layout(three))
    assert [c.folder_name("hakone") for c in settings.train_concepts] == [
        "7_hakone",
        "3_hakone_casual",
    ]
    assert [c.folder_name("1boy") for c in settings.reg_concept_list] == ["1_1boy"]


def test_plan_counts_every_folder(three: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plan", str(three)], catch_exceptions=False)
    lines = result.output.splitlines()
    assert lines[1:4] == [
        "  train 3_hakone_casual: 3 images x 3 repeats = 9",
        "  train 7_hakone: 2 images x 7 repeats = 14",
        "  reg   1_1boy: 2 images x 1 repeats = 2",
    ]
    result = runner.invoke(cli, ["config", str(three)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["validate", str(three / "config.toml")])
    assert result.output.splitlines()[-1] == "ok: no problems found"


def test_captions_check_of_a_project_checks_each_concept(three: Path, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["captions", str(three), "--trigger", "hakone", "-q"])
    assert result.exit_code == 1  # the test images carry no embedded caption
    assert result.output == (
        "== img/3_hakone_casual\nTrigger: hakone; keep_tokens = 1.\n"
        "3 images, 0 fine, 3 flagged (not-embedded 3).\n"
        "== img/7_hakone\nTrigger: hakone; keep_tokens = 1.\n"
        "2 images, 0 fine, 2 flagged (not-embedded 2).\n"
    )


def test_two_concepts_in_one_folder_are_refused(tmp_path: Path, runner: CliRunner) -> None:
    a = make_images(tmp_path / "a", "a", 1)
    b = make_images(tmp_path / "b", "b", 1)
    model = make_model(tmp_path / "base.safetensors")
    dest = tmp_path / "train"
    result = runner.invoke(
        cli,
        [
            "prepare",
            "hakone",
            "--images",
            str(a),
            "--images",
            str(b),
            "--dest",
            str(dest),
            "--model",
            str(model),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {a} and {b} would both go to img/7_hakone/, and sd-scripts would read them as "
        "one concept.\n"
        f"  hint: Give one its own repeats or class tokens, e.g. --images {b}:7:hakone_2\n"
    )
    assert not dest.exists()


def test_caption_warnings_name_the_concept(tmp_path: Path, runner: CliRunner) -> None:
    a = make_images(tmp_path / "a", "a", 1, "hakone")
    b = make_images(tmp_path / "b", "b", 1, "other")
    model = make_model(tmp_path / "base.safetensors")
    result = runner.invoke(
        cli,
        [
            "prepare",
            "hakone",
            "--images",
            str(a),
            "--images",
            f"{b}:2",
            "--dest",
            str(tmp_path / "t"),
            "--model",
            str(model),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "warning: img/2_hakone: 1 captions do not start with the trigger 'hakone': b_1.txt\n"
    )


def test_the_run_record_lists_every_concept(three: Path) -> None:
    from kohya_orchestrator.train.runrecord import dataset_manifest

    files = [e["file"] for e in dataset_manifest(three / "img", ".txt")]
    assert files == [
        "3_hakone_casual/casual_1.png",
        "3_hakone_casual/casual_2.png",
        "3_hakone_casual/casual_3.png",
        "7_hakone/suit_1.png",
        "7_hakone/suit_2.png",
    ]
    settings = json.loads(json.dumps(load_settings(Layout(three)).values()))
    assert settings["concepts"][0]["repeats"] == 3
