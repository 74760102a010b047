"""The argument facts: every shipped commit, facts kept per commit, the one flattening."""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import toml
from testpaths import VENDOR_SD_SCRIPTS

from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.contract import (
    LINTED_SCRIPTS,
    flatten_like_sd_scripts,
    load_contract,
    user_contract_file,
)

# sd-scripts' own code, to compare with (read at test time, never copied): $SD_SCRIPTS_DIR, else
# vendor/sd-scripts after `make sd-scripts`. Tests that need it skip otherwise.
SD_SCRIPTS = Path(os.environ.get("SD_SCRIPTS_DIR", "").split(os.pathsep)[0] or VENDOR_SD_SCRIPTS)


@pytest.fixture(autouse=True)
def _own_contract_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "contract-dir"
    monkeypatch.setenv("KOHYA_ORCH_CONTRACT_DIR", str(folder))
    return folder


def test_shipped_facts_of_every_commit() -> None:
    counts = {
        (script, label): len(load_contract(script, commit=label).options)
        for script in LINTED_SCRIPTS
        for label in ("6721028c", "2e0fcc50", "48d368fa", "v0.9.1")
        if (script, label)
        not in {("flux_train_network.py", "v0.9.1"), ("sd3_train_network.py", "v0.9.1")}
    }
    assert counts == {
        ("sdxl_train_network.py", "6721028c"): 198,
        ("sdxl_train_network.py", "2e0fcc50"): 190,
        ("sdxl_train_network.py", "48d368fa"): 196,
        ("sdxl_train_network.py", "v0.9.1"): 180,
        ("train_network.py", "6721028c"): 195,
        ("train_network.py", "2e0fcc50"): 187,
        ("train_network.py", "48d368fa"): 193,
        ("train_network.py", "v0.9.1"): 177,
        ("sd3_train_network.py", "6721028c"): 222,
        ("sd3_train_network.py", "2e0fcc50"): 212,
        ("sd3_train_network.py", "48d368fa"): 218,
        ("flux_train_network.py", "6721028c"): 219,
        ("flux_train_network.py", "2e0fcc50"): 208,
        ("flux_train_network.py", "48d368fa"): 215,
    }


def test_the_default_is_the_kohya_ss_pin() -> None:
    sdxl = load_contract("sdxl_train_network.py")
    old = load_contract("sdxl_train_network.py", commit="8f4ee8fc343b047965cd8976fca65c3a35b7593a")
    assert sdxl.commit == "6721028c79ee85a78b3a06dfd8954dae310a1cce"
    assert old.commit == "8f4ee8fc343b047965cd8976fca65c3a35b7593a"
    assert load_contract("train_network.py", commit="8f4ee8fc").commit == old.commit
    assert set(sdxl.options) - set(load_contract("train_network.py").options) == {
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
        "sdxl_train_network.py at sd-scripts 6721028c (kohya_ss v26 pin): 198 options "
        "(shipped sdxl_train_network.6721028c.json)"
    )
    assert old.version == "8f4ee8fc (sd-scripts v0.9.1)"


def test_unknown_script_and_commit_are_errors() -> None:
    with pytest.raises(ContractError) as info:
        load_contract("sd_xl_train_network.py")
    assert info.value.render() == (
        "unsupported training script 'sd_xl_train_network.py'\n"
        "  hint: use one of: sdxl_train_network.py, train_network.py, sd3_train_network.py, "
        "flux_train_network.py"
    )
    with pytest.raises(ContractError) as info:
        load_contract("flux_train_network.py", commit="v0.9.1")
    assert info.value.render() == (
        "sd-scripts 8f4ee8fc (sd-scripts v0.9.1) has no flux_train_network.py\n"
        "  hint: its facts ship for: 6721028c, 2e0fcc50, 48d368fa"
    )
    with pytest.raises(ContractError) as info:
        load_contract("train_network.py", commit="0123456789abcdef0123456789abcdef01234567")
    assert info.value.render() == (
        "no argument facts for train_network.py at sd-scripts 0123456789\n"
        "  hint: shipped: 6721028c, 2e0fcc50, 48d368fa, v0.9.1; or run `kohya-orch contract "
        "refresh --sd-scripts DIR`"
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


def test_facts_read_from_a_checkout_are_kept_by_commit(_own_contract_dir: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    path = user_contract_file("sdxl_train_network.py", commit)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_facts("sdxl_train_network.py", ["only_this"], commit)), "utf-8")
    assert path == _own_contract_dir / commit / "sdxl_train_network.json"
    contract = load_contract("sdxl_train_network.py", commit=commit)
    assert contract.names == ["only_this"]
    assert contract.source == str(path)
    # never as one global set: other commits, and the default, keep their own facts
    assert len(load_contract("sdxl_train_network.py").options) == 198
    assert len(load_contract("sdxl_train_network.py", commit="48d368fa").options) == 196


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
    # library/train_util.py, or library/args.py from 6721028c on.
    for name in ("train_util.py", "args.py"):
        path = SD_SCRIPTS / "library" / name
        tree = ast.parse(path.read_text(encoding="utf-8")) if path.is_file() else ast.Module([], [])
        found = [
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name == "read_config_from_file"
        ]
        if found:
            node = found[0]
            break
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
    exec(compile(module, str(path), "exec"), namespace)
    return namespace["read_config_from_file"]


@pytest.mark.skipif(
    not (SD_SCRIPTS / "library" / "train_util.py").is_file(),
    reason="needs an sd-scripts checkout (SD_SCRIPTS_DIR, or `make sd-scripts`)",
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
