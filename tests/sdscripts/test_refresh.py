"""Reading a checkout's own parser through its Python, kept by the checkout's commit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from checkouts import FAKE_SDXL_OPTIONS, fake_checkout
from click.testing import CliRunner

from kohya_orchestrator.cli import cli
from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.contract import load_contract, user_contract_file
from kohya_orchestrator.sdscripts.refresh import generate_facts, refresh_contract

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def _own_contract_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "contract-dir"
    monkeypatch.setenv("KOHYA_ORCH_CONTRACT_DIR", str(folder))
    return folder


def test_refresh_runs_the_checkouts_own_parser(tmp_path: Path, _own_contract_dir: Path) -> None:
    root = fake_checkout(tmp_path / "sd-scripts", COMMIT)
    results = refresh_contract(root, sys.executable)
    assert [r.script for r in results] == ["sdxl_train_network.py", "train_network.py"]
    assert [r.path for r in results] == [
        _own_contract_dir / COMMIT / "sdxl_train_network.json",
        _own_contract_dir / COMMIT / "train_network.json",
    ]
    data = json.loads(results[0].path.read_text("utf-8"))
    assert data["sd_scripts_commit"] == COMMIT
    assert [o["dest"] for o in data["options"]] == FAKE_SDXL_OPTIONS
    by = {o["dest"]: o for o in data["options"]}
    assert by["shuffle_caption"] == {
        "dest": "shuffle_caption",
        "option_strings": ["--shuffle_caption"],
        "kind": "store_true",
        "type": None,
        "default": False,
        "choices": None,
        "nargs": 0,
    }
    assert by["lr_warmup_steps"]["type"] == "int_or_float"
    assert by["network_args"]["nargs"] == "*"
    assert by["mixed_precision"]["choices"] == ["no", "fp16", "bf16"]
    # kept for that commit only
    assert len(load_contract("sdxl_train_network.py", commit=COMMIT).options) == 6
    assert len(load_contract("sdxl_train_network.py").options) == 198


def test_refresh_needs_a_known_commit(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path / "sd-scripts")  # a copy without .git
    with pytest.raises(ContractError) as info:
        refresh_contract(root, sys.executable)
    assert info.value.render() == (
        f"cannot tell which commit {root} is at (no .git folder)\n"
        "  hint: facts are kept per commit: use a git checkout of sd-scripts (`make sd-scripts`)"
    )


def test_refresh_names_the_missing_module(tmp_path: Path) -> None:
    root = fake_checkout(
        tmp_path / "sd-scripts", COMMIT, sdxl_body="import diffusers_not_installed_here\n"
    )
    with pytest.raises(ContractError) as info:
        refresh_contract(root, sys.executable)
    assert info.value.render() == (
        f"the Python {sys.executable} cannot import sdxl_train_network.py's parser: module "
        "'diffusers_not_installed_here' is missing\n"
        "  hint: pass the Python of your sd-scripts environment with --python (it needs "
        "torch, transformers and diffusers)"
    )
    assert not user_contract_file("train_network.py", COMMIT).exists()


def test_a_module_failing_inside_its_import_is_named_too(tmp_path: Path) -> None:
    # Regression: transformers that cannot load CLIP raises an ImportError whose name is
    # None, which read "module None is missing".
    body = "raise ImportError(\"cannot import name 'CLIPTextModel' from 'transformers'\")\n"
    root = fake_checkout(tmp_path / "sd-scripts", COMMIT, sdxl_body=body)
    with pytest.raises(ContractError) as info:
        refresh_contract(root, sys.executable)
    assert info.value.message == (
        f"the Python {sys.executable} cannot import sdxl_train_network.py's parser: module "
        "'CLIPTextModel' is missing"
    )


def test_refresh_reports_a_failing_parser(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path / "sd-scripts", sdxl_body="raise RuntimeError('boom')\n")
    with pytest.raises(ContractError) as info:
        generate_facts(root, "sdxl_train_network.py", sys.executable)
    assert info.value.message == (
        f"reading sdxl_train_network.py's parser in {root} failed (exit 4): RuntimeError: boom"
    )


def test_refresh_refuses_a_folder_that_is_not_a_checkout(tmp_path: Path) -> None:
    with pytest.raises(ContractError) as info:
        generate_facts(tmp_path, "train_network.py", sys.executable)
    assert info.value.message == (
        f"{tmp_path.resolve()} is not an sd-scripts checkout: train_network.py is missing"
    )


def test_refresh_with_a_python_that_does_not_exist(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path / "sd-scripts")
    with pytest.raises(ContractError) as info:
        generate_facts(root, "train_network.py", str(tmp_path / "no-python"))
    assert info.value.message == (
        f"cannot run Python {tmp_path / 'no-python'}: No such file or directory"
    )


def test_cli_contract_show_and_refresh(
    runner: CliRunner, tmp_path: Path, _own_contract_dir: Path
) -> None:
    shown = runner.invoke(cli, ["contract", "show"], catch_exceptions=False)
    assert shown.output.splitlines()[:3] == [
        "Argument facts shipped (chosen by the commit of the sd-scripts checkout in use):",
        "  6721028c  kohya_ss master and v26.0.0; sd-scripts v0.11.1 (2026-06-16), commit "
        "6721028c79ee85a78b3a06dfd8954dae310a1cce",
        "            sdxl_train_network.py (198), train_network.py (195), "
        "flux_train_network.py (219), sd3_train_network.py (222), "
        "tag_images_by_wd14_tagger.py (32)",
    ]
    assert shown.output.splitlines()[-2:] == [
        "Without a checkout, or at a commit whose facts cannot be read: 6721028c "
        "(kohya_ss v26 pin).",
        f"Facts read from checkouts would be kept in {_own_contract_dir}",
    ]
    root = fake_checkout(tmp_path / "sd-scripts", COMMIT)
    done = runner.invoke(
        cli,
        ["contract", "refresh", "--sd-scripts", str(root), "--python", sys.executable],
        catch_exceptions=False,
    )
    assert done.exit_code == 0
    sdxl_file = _own_contract_dir / COMMIT / "sdxl_train_network.json"
    assert done.output.splitlines()[0] == (
        f"sdxl_train_network.py at sd-scripts 01234567: 6 options ({sdxl_file}) -> {sdxl_file}"
    )
    newest = load_contract("sdxl_train_network.py").names
    removed = [n for n in newest if n not in FAKE_SDXL_OPTIONS]
    assert done.output.splitlines()[1] == (
        f"  vs shipped 6721028c: 0 added, {len(removed)} removed ({', '.join(removed)})"
    )
    data = json.loads(runner.invoke(cli, ["contract", "show", "--json"]).output)
    assert data["refreshed"] == [
        {
            "sd_scripts_commit": COMMIT,
            "label": "01234567",
            "pinned_by": "",
            "date": "",
            "scripts": {"sdxl_train_network.py": 6, "train_network.py": 5},
        }
    ]
    assert [e["label"] for e in data["shipped"]] == ["6721028c", "2e0fcc50", "48d368fa", "v0.9.1"]


def test_cli_refresh_error_exit_code(runner: CliRunner, tmp_path: Path) -> None:
    root = fake_checkout(tmp_path / "sd-scripts", COMMIT, sdxl_body="import no_such_mod_xyz\n")
    result = runner.invoke(
        cli, ["contract", "refresh", "--sd-scripts", str(root), "--python", sys.executable]
    )
    assert result.exit_code == 1
    assert "module 'no_such_mod_xyz' is missing" in result.output


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SD_SCRIPTS_PYTHON") or not os.environ.get("SD_SCRIPTS_DIR"),
    reason="set SD_SCRIPTS_PYTHON and SD_SCRIPTS_DIR",
)
@pytest.mark.parametrize("script", ["sdxl_train_network.py", "train_network.py"])
def test_the_real_checkouts_parser_reproduces_the_shipped_facts(script: str) -> None:
    for tree in os.environ["SD_SCRIPTS_DIR"].split(os.pathsep):
        from kohya_orchestrator.sdscripts.checkout import sd_scripts_commit

        commit = sd_scripts_commit(Path(tree))
        assert commit is not None
        data = generate_facts(Path(tree), script, os.environ["SD_SCRIPTS_PYTHON"], commit)
        shipped = load_contract(script, commit=commit)
        assert [o["dest"] for o in data["options"]] == shipped.names
        assert [o["nargs"] for o in data["options"]] == [
            shipped.options[n].nargs for n in shipped.names
        ]
