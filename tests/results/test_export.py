"""export.py: copying or linking the LoRA files into Forge's models/Lora folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_factory import write_run

from kohya_orchestrator.errors import ResultsError
from kohya_orchestrator.results.export import apply_export, plan_export

NAME = "yumoto_hakone"


@pytest.fixture
def run(tmp_path: Path) -> list[Path]:
    return write_run(tmp_path / "dest", epochs=3)


@pytest.fixture
def lora_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "forge" / "models" / "Lora"
    folder.mkdir(parents=True)
    return folder


def test_copy_then_skip_identical(run: list[Path], lora_dir: Path) -> None:
    plan = plan_export(run, lora_dir)
    assert [(a.target.name, a.action) for a in plan.actions] == [
        (f"{NAME}-000001.safetensors", "copy"),
        (f"{NAME}-000002.safetensors", "copy"),
        (f"{NAME}.safetensors", "copy"),
    ]
    apply_export(plan)
    for src in run:
        copy = lora_dir / src.name
        assert copy.read_bytes() == src.read_bytes()
        assert not copy.is_symlink()
        assert copy.stat().st_mtime == src.stat().st_mtime
    assert sorted(p.name for p in lora_dir.iterdir()) == sorted(p.name for p in run)  # no temps
    again = plan_export(run, lora_dir)
    assert {a.action for a in again.actions} == {"skip"}
    assert again.actions[0].reason == "already there, identical"


def test_refuses_to_overwrite_a_different_file(run: list[Path], lora_dir: Path) -> None:
    other = lora_dir / f"{NAME}.safetensors"
    other.write_bytes(b"an older LoRA of the same name")
    plan = plan_export(run, lora_dir)
    assert [a.action for a in plan.actions] == ["copy", "copy", "conflict"]
    with pytest.raises(ResultsError) as err:
        apply_export(plan)
    assert err.value.render() == (
        f"Not exported: 1 file(s) in {lora_dir} have the same name but different content: "
        f"{NAME}.safetensors. Nothing was copied.\n"
        "  hint: Use --force to replace them, or rename the old files first."
    )
    assert other.read_bytes() == b"an older LoRA of the same name"
    assert [p.name for p in lora_dir.iterdir()] == [f"{NAME}.safetensors"]


def test_force_replaces(run: list[Path], lora_dir: Path) -> None:
    (lora_dir / f"{NAME}.safetensors").write_bytes(b"old")
    plan = plan_export(run, lora_dir, force=True)
    assert [a.action for a in plan.actions] == ["copy", "copy", "replace"]
    apply_export(plan)
    assert (lora_dir / f"{NAME}.safetensors").read_bytes() == run[-1].read_bytes()


def test_link(run: list[Path], lora_dir: Path) -> None:
    apply_export(plan_export(run, lora_dir, link=True))
    for src in run:
        link = lora_dir / src.name
        assert link.is_symlink()
        assert Path(link.readlink()) == src.resolve()
    assert {a.action for a in plan_export(run, lora_dir, link=True).actions} == {"skip"}


def test_folder_of_the_same_name_is_a_conflict_even_with_force(
    run: list[Path], lora_dir: Path
) -> None:
    (lora_dir / f"{NAME}.safetensors").mkdir()
    plan = plan_export(run, lora_dir, force=True)
    assert plan.actions[-1].action == "conflict"
    assert plan.actions[-1].reason == "a folder of that name is there"


def test_missing_target_folder_is_not_created(run: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ResultsError) as err:
        plan_export(run, tmp_path / "Lora")
    assert err.value.message == f"Export folder not found: {tmp_path / 'Lora'}"
    assert not (tmp_path / "Lora").exists()


def test_nothing_to_export(lora_dir: Path) -> None:
    with pytest.raises(ResultsError, match="No LoRA files to export"):
        plan_export([], lora_dir)
