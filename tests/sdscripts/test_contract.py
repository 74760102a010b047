"""Tests for contract: the shipped facts, precedence of refreshed facts, flattening, refresh."""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import toml
from click.testing import CliRunner
from testpaths import VENDOR_SD_SCRIPTS

from kohya_orchestrator.cli import cli
from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.contract import (
    flatten_like_sd_scripts,
    generate_facts,
    load_contract,
    refresh_contract,
    user_contract_file,
)

# sd-scripts' own code, to compare with (read at test time, never copied): $SD_SCRIPTS_DIR, else
# the vendor/sd-scripts submodule when it is checked out. Tests that need it skip otherwise.
SD_SCRIPTS = Path(os.environ.get("SD_SCRIPTS_DIR") or VENDOR_SD_SCRIPTS)


@pytest.fixture(autouse=True)
def _own_contract_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "contract-dir"
    monkeypatch.setenv("KOHYA_ORCH_CONTRACT_DIR", str(folder))
    return folder


def test_shipped_facts() -> None:
    sdxl = load_contract("sdxl_train_network.py")
    sd1 = load_contract("train_network.py")
    old = load_contract("sdxl_train_network.py", commit="v0.9.1")
    assert (len(sdxl.options), len(sd1.options), len(old.options)) == (196, 193, 180)
    assert sdxl.commit == "48d368fa557731ad0488c07304dfeba8c07910eb"
    assert old.commit == "8f4ee8fc343b047965cd8976fca65c3a35b7593a"
    assert set(sdxl.options) - set(sd1.options) == {
        "cache_text_encoder_outputs",
        "cache_text_encoder_outputs_to_disk",
        "disable_mmap_load_safetensors",
    }
    assert set(old.options) <= set(sdxl.options)
    assert sdxl.options["text_encoder_lr"].is_list
    assert not old.options["text_encoder_lr"].is_list
    assert sdxl.options["shuffle_caption"].is_flag
    assert sdxl.options["mixed_precision"].choices == ("no", "fp16", "bf16")
    assert sdxl.describe() == (
        "sdxl_train_network.py at sd-scripts 48d368fa: 196 options "
        "(shipped sdxl_train_network.48d368fa.json)"
    )


def test_unknown_script_and_commit_are_errors() -> None:
    with pytest.raises(ContractError) as info:
        load_contract("sd_xl_train_network.py")
    assert info.value.render() == (
        "unsupported training script 'sd_xl_train_network.py'\n"
        "  hint: use one of: sdxl_train_network.py, train_network.py"
    )
    with pytest.raises(ContractError) as info:
        load_contract("train_network.py", commit="v0.9.1")
    assert info.value.render() == (
        "no shipped argument facts for train_network.py at sd-scripts v0.9.1\n"
        "  hint: shipped: 48d368fa; or run `kohya-orch contract refresh`"
    )


def _facts(script: str, dests: list[str], commit: str = "abc123") -> dict[str, Any]:
    return {
        "script": script,
        "sd_scripts_commit": commit,
        "options": [
            {
                "dest": d,
                "option_strings": [f"--{d}"],
                "kind": "store",
                "type": "int",
                "default": None,
                "choices": None,
                "nargs": None,
            }
            for d in dests
        ],
    }


def test_refreshed_facts_win_over_shipped_unless_a_commit_is_asked(
    _own_contract_dir: Path,
) -> None:
    _own_contract_dir.mkdir()
    path = user_contract_file("sdxl_train_network.py")
    path.write_text(json.dumps(_facts("sdxl_train_network.py", ["only_this"])), "utf-8")
    contract = load_contract("sdxl_train_network.py")
    assert contract.names == ["only_this"]
    assert contract.source == str(path)
    assert len(load_contract("sdxl_train_network.py", commit="48d368fa").options) == 196
    assert len(load_contract("train_network.py").options) == 193


def test_explicit_facts_file(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(_facts("train_network.py", ["a"])), "utf-8")
    assert load_contract("train_network.py", facts=path).names == ["a"]
    with pytest.raises(ContractError) as info:
        load_contract("sdxl_train_network.py", facts=path)
    assert info.value.message == (
        f"contract file {path} describes train_network.py, not sdxl_train_network.py"
    )
    path.write_text("{not json", "utf-8")
    with pytest.raises(ContractError) as info:
        load_contract("train_network.py", facts=path)
    assert info.value.message == (
        f"contract file {path} is not valid JSON (line 1: Expecting property name enclosed "
        "in double quotes)"
    )
    path.write_text('{"script": "train_network.py"}', "utf-8")
    with pytest.raises(ContractError) as info:
        load_contract("train_network.py", facts=path)
    assert info.value.message == f"{path}: not an argument facts file (KeyError: 'options')"


@pytest.mark.parametrize(
    ("doc", "flat"),
    [
        ({}, {}),
        ({"a": 1, "t": {"b": 2}}, {"a": 1, "b": 2}),
        ({"t1": {"k": 1}, "t2": {"k": 2}}, {"k": 2}),
        ({"k": 0, "t": {"k": 1}}, {"k": 1}),
        ({"t": {"k": 1}, "k": 0}, {"k": 0}),
        ({"t": {"u": {"deep": 1}}}, {"u": {"deep": 1}}),
        ({"arr": [{"x": 1}]}, {"arr": [{"x": 1}]}),
        ({"t": {}}, {}),
    ],
)
def test_flatten_cases(doc: dict[str, Any], flat: dict[str, Any]) -> None:
    assert flatten_like_sd_scripts(doc) == flat


def _sd_scripts_reader() -> Any:
    """sd-scripts' own read_config_from_file, taken from the checkout's source (not copied)."""
    source = (SD_SCRIPTS / "library" / "train_util.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    node = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "read_config_from_file"
    )
    module = ast.Module(body=[node], type_ignores=[])

    class _Log:
        def info(self, *_: object) -> None: ...

        def error(self, *_: object) -> None: ...

    namespace: dict[str, Any] = {
        "argparse": argparse,
        "os": os,
        "toml": toml,
        "logger": _Log(),
        "pathlib": Path,
    }
    exec(compile(module, str(SD_SCRIPTS / "library/train_util.py"), "exec"), namespace)
    return namespace["read_config_from_file"]


@pytest.mark.skipif(
    not (SD_SCRIPTS / "library" / "train_util.py").is_file(),
    reason="needs an sd-scripts checkout (SD_SCRIPTS_DIR or the vendor/sd-scripts submodule)",
)
def test_flatten_matches_sd_scripts_own_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = _sd_scripts_reader()
    path = tmp_path / "c.toml"
    path.write_text(
        textwrap.dedent(
            """
            top = "x"
            learning_rate = 1.0
            [model]
            learning_rate = 2.0
            resolution = "512,512"
            [train]
            learning_rate = 3.0
            network_args = ["a=1"]
            [train.deeper]
            ignored = 1
            [[datasets]]
            resolution = 512
            """
        ),
        encoding="utf-8",
    )
    parser = argparse.ArgumentParser()
    parser.add_argument("--config_file")
    parser.add_argument("--output_config", action="store_true")
    # sd-scripts re-parses sys.argv on top of the file's values, as in a real launch.
    monkeypatch.setattr(sys, "argv", ["sdxl_train_network.py", "--config_file", str(path)])
    args = parser.parse_args()
    result = vars(reader(args, parser))
    for key in ("config_file", "output_config"):
        result.pop(key)
    assert result == flatten_like_sd_scripts(toml.load(path))


def _fake_checkout(root: Path, sdxl_body: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "train_network.py").write_text(
        textwrap.dedent(
            """
            import argparse

            def int_or_float(value):
                return float(value) if "." in value else int(value)

            def setup_parser():
                p = argparse.ArgumentParser()
                p.add_argument("--learning_rate", type=float, default=2e-06)
                p.add_argument("--shuffle_caption", action="store_true")
                p.add_argument("--network_args", type=str, default=None, nargs="*")
                p.add_argument("--mixed_precision", type=str, default="no",
                               choices=["no", "fp16", "bf16"])
                p.add_argument("--lr_warmup_steps", type=int_or_float, default=0)
                return p
            """
        ),
        encoding="utf-8",
    )
    (root / "sdxl_train_network.py").write_text(
        sdxl_body
        or textwrap.dedent(
            """
            import train_network

            def setup_parser():
                p = train_network.setup_parser()
                p.add_argument("--cache_text_encoder_outputs", action="store_true")
                return p
            """
        ),
        encoding="utf-8",
    )
    return root


FAKE_SDXL_OPTIONS = [
    "cache_text_encoder_outputs",
    "learning_rate",
    "lr_warmup_steps",
    "mixed_precision",
    "network_args",
    "shuffle_caption",
]


def test_refresh_runs_the_checkouts_own_parser(tmp_path: Path, _own_contract_dir: Path) -> None:
    root = _fake_checkout(tmp_path / "sd-scripts")
    results = refresh_contract(root, sys.executable)
    assert [r.script for r in results] == ["sdxl_train_network.py", "train_network.py"]
    assert [r.path for r in results] == [
        _own_contract_dir / "sdxl_train_network.json",
        _own_contract_dir / "train_network.json",
    ]
    data = json.loads(results[0].path.read_text("utf-8"))
    assert data["sd_scripts_commit"] == "unknown"
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
    # validate now uses the refreshed facts
    contract = load_contract("sdxl_train_network.py")
    assert len(contract.options) == 6
    assert len(load_contract("train_network.py").options) == 5


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_refresh_records_the_checkout_commit(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path / "sd-scripts")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    data = generate_facts(root, "train_network.py", sys.executable)
    assert data["sd_scripts_commit"] == head


def test_refresh_names_the_missing_module(tmp_path: Path) -> None:
    root = _fake_checkout(
        tmp_path / "sd-scripts", sdxl_body="import diffusers_not_installed_here\n"
    )
    with pytest.raises(ContractError) as info:
        refresh_contract(root, sys.executable)
    assert info.value.render() == (
        f"the Python {sys.executable} cannot import sdxl_train_network.py's parser: module "
        "'diffusers_not_installed_here' is missing\n"
        "  hint: pass the Python of your sd-scripts environment with --python (it needs "
        "torch, transformers and diffusers)"
    )
    assert not user_contract_file("train_network.py").exists()


def test_refresh_reports_a_failing_parser(tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path / "sd-scripts", sdxl_body="raise RuntimeError('boom')\n")
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
    root = _fake_checkout(tmp_path / "sd-scripts")
    with pytest.raises(ContractError) as info:
        generate_facts(root, "train_network.py", str(tmp_path / "no-python"))
    assert info.value.message == (
        f"cannot run Python {tmp_path / 'no-python'}: No such file or directory"
    )


def test_cli_contract_show_and_refresh(
    runner: CliRunner, tmp_path: Path, _own_contract_dir: Path
) -> None:
    shown = runner.invoke(cli, ["contract", "show"], catch_exceptions=False)
    assert shown.output.splitlines() == [
        "sdxl_train_network.py at sd-scripts 48d368fa: 196 options "
        "(shipped sdxl_train_network.48d368fa.json)",
        "train_network.py at sd-scripts 48d368fa: 193 options "
        "(shipped train_network.48d368fa.json)",
        f"refreshed facts are stored in {_own_contract_dir}",
    ]
    root = _fake_checkout(tmp_path / "sd-scripts")
    done = runner.invoke(
        cli,
        ["contract", "refresh", "--sd-scripts", str(root), "--python", sys.executable],
        catch_exceptions=False,
    )
    assert done.exit_code == 0
    sdxl_file = _own_contract_dir / "sdxl_train_network.json"
    assert done.output.splitlines()[0] == (
        f"sdxl_train_network.py at sd-scripts unknown: 6 options ({sdxl_file}) -> {sdxl_file}"
    )
    shipped = load_contract("sdxl_train_network.py", commit="48d368fa").names
    removed = [n for n in shipped if n not in FAKE_SDXL_OPTIONS]
    assert done.output.splitlines()[1] == (
        f"  vs shipped 48d368fa: 0 added, 190 removed ({', '.join(removed)})"
    )
    data = json.loads(runner.invoke(cli, ["contract", "show", "--json"]).output)
    assert [c["options"] for c in data["contracts"]] == [6, 5]


def test_cli_refresh_error_exit_code(runner: CliRunner, tmp_path: Path) -> None:
    root = _fake_checkout(tmp_path / "sd-scripts", sdxl_body="import no_such_mod_xyz\n")
    result = runner.invoke(
        cli, ["contract", "refresh", "--sd-scripts", str(root), "--python", sys.executable]
    )
    assert result.exit_code == 1
    assert "module 'no_such_mod_xyz' is missing" in result.output


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SD_SCRIPTS_PYTHON"), reason="set SD_SCRIPTS_PYTHON (and SD_SCRIPTS_DIR)"
)
def test_refresh_from_the_real_checkout_reproduces_the_shipped_facts() -> None:
    data = generate_facts(SD_SCRIPTS, "sdxl_train_network.py", os.environ["SD_SCRIPTS_PYTHON"])
    shipped = load_contract("sdxl_train_network.py", commit=data["sd_scripts_commit"][:8])
    assert [o["dest"] for o in data["options"]] == shipped.names
