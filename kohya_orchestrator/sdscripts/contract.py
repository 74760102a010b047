"""What sd-scripts accepts: the argparse facts of its training scripts, and its TOML flattening.

The facts ship in `contract_data/` (one JSON file per script and sd-scripts commit, the parser
dumped by running sd-scripts' own code). `kohya-orch contract refresh` regenerates them from the
user's own checkout; a refreshed file wins over the shipped ones. Refreshed facts are stored in
`$KOHYA_ORCH_CONTRACT_DIR`, or else `${XDG_DATA_HOME:-~/.local/share}/kohya-orch/contract/`,
as `<script stem>.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.trainers import default_script, rendered_scripts

SCRIPTS = rendered_scripts()
DEFAULT_SCRIPT = default_script()
PINNED_COMMIT = "48d368fa557731ad0488c07304dfeba8c07910eb"
# Shipped facts: (script, commit label) -> file name in contract_data/.
SHIPPED = {
    ("sdxl_train_network.py", "48d368fa"): "sdxl_train_network.48d368fa.json",
    ("sdxl_train_network.py", "v0.9.1"): "sdxl_train_network.v0.9.1.json",
    ("train_network.py", "48d368fa"): "train_network.48d368fa.json",
}
DATA_DIR = Path(__file__).resolve().parent / "data"
ENV_DIR = "KOHYA_ORCH_CONTRACT_DIR"


@dataclass(frozen=True)
class Option:
    """One argparse option of a training script, as the facts file records it."""

    dest: str
    option_strings: tuple[str, ...]
    kind: str
    type: str | None
    default: Any
    choices: tuple[Any, ...] | None
    nargs: int | str | None

    @property
    def is_flag(self) -> bool:
        """A switch (`store_true`): only true or false make sense in a TOML file."""
        return self.kind in ("store_true", "store_false")

    @property
    def is_list(self) -> bool:
        """An option taking several values (`nargs='*'` or '+'): a TOML array in a file."""
        return self.nargs in ("*", "+") or (isinstance(self.nargs, int) and self.nargs > 1)


@dataclass(frozen=True)
class Contract:
    """The options one training script accepts at one sd-scripts commit."""

    script: str
    commit: str
    source: str
    options: Mapping[str, Option] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Every option name (argparse dest), sorted."""
        return sorted(self.options)

    @property
    def short_commit(self) -> str:
        return self.commit[:8] if len(self.commit) == 40 else self.commit

    def describe(self) -> str:
        """One line: which facts are in use."""
        return (
            f"{self.script} at sd-scripts {self.short_commit}: "
            f"{len(self.options)} options ({self.source})"
        )


def user_contract_dir() -> Path:
    """Where `contract refresh` stores facts (see the module docstring)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kohya-orch" / "contract"


def user_contract_file(script: str) -> Path:
    """The refreshed facts file of `script` (it may not exist)."""
    return user_contract_dir() / f"{Path(script).stem}.json"


def _check_script(script: str) -> str:
    name = Path(script).name
    if name not in SCRIPTS:
        raise ContractError(
            f"unsupported training script {script!r}",
            hint=f"use one of: {', '.join(SCRIPTS)}",
        )
    return name


def parse_facts(data: Any, source: str) -> Contract:
    """A Contract from the JSON schema of the facts files; ContractError when malformed."""
    try:
        options = {}
        for raw in data["options"]:
            choices = raw.get("choices")
            opt = Option(
                dest=str(raw["dest"]),
                option_strings=tuple(raw.get("option_strings") or ()),
                kind=str(raw["kind"]),
                type=raw.get("type"),
                default=raw.get("default"),
                choices=tuple(choices) if choices is not None else None,
                nargs=raw.get("nargs"),
            )
            options[opt.dest] = opt
        return Contract(
            script=str(data["script"]),
            commit=str(data.get("sd_scripts_commit") or "unknown"),
            source=source,
            options=options,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ContractError(
            f"{source}: not an argument facts file ({exc.__class__.__name__}: {exc})",
            hint="regenerate it with `kohya-orch contract refresh --sd-scripts DIR`",
        ) from exc


def read_facts_file(path: Path) -> Contract:
    """Read one facts JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractError(f"cannot read contract file {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ContractError(
            f"contract file {path} is not valid JSON (line {exc.lineno}: {exc.msg})",
            hint="regenerate it with `kohya-orch contract refresh --sd-scripts DIR`",
        ) from exc
    return parse_facts(data, str(path))


def load_contract(
    script: str = DEFAULT_SCRIPT,
    facts: Path | None = None,
    commit: str | None = None,
) -> Contract:
    """The facts for `script`: an explicit `facts` file, else a refreshed one, else shipped.

    `commit` picks shipped facts ("48d368fa", the default, or "v0.9.1" for the SDXL script)
    and skips the refreshed file.
    """
    name = _check_script(script)
    if facts is not None:
        contract = read_facts_file(Path(facts))
        if Path(contract.script).name != name:
            raise ContractError(
                f"contract file {facts} describes {contract.script}, not {name}",
                hint=f"pass the facts of {name}, or --script {contract.script}",
            )
        return contract
    if commit is None:
        refreshed = user_contract_file(name)
        if refreshed.is_file():
            return read_facts_file(refreshed)
        commit = PINNED_COMMIT[:8]
    label = commit[:8] if len(commit) == 40 else commit
    file_name = SHIPPED.get((name, label))
    if file_name is None:
        have = sorted(c for s, c in SHIPPED if s == name)
        raise ContractError(
            f"no shipped argument facts for {name} at sd-scripts {commit}",
            hint=f"shipped: {', '.join(have)}; or run `kohya-orch contract refresh`",
        )
    contract = read_facts_file(DATA_DIR / file_name)
    return Contract(contract.script, contract.commit, f"shipped {file_name}", contract.options)


@dataclass(frozen=True)
class Flattened:
    """A parsed TOML document as train_util.read_config_from_file reads it.

    `values` is the one namespace it builds; `places` says where each key was set ("top
    level", "[section]"), so a key set in several tables can be reported; `nested` lists the
    tables nested two levels deep, (table, key, their keys), which sd-scripts never reads.
    """

    values: dict[str, Any]
    places: dict[str, list[str]]
    nested: list[tuple[str, str, list[str]]]


def flatten(doc: Mapping[str, Any]) -> Flattened:
    """The one flattening of a config (each command flattens a document once).

    Top-level scalars stay; every key of every top-level table lands in one namespace (the
    table name does not matter, the last occurrence wins); deeper tables are kept as values.
    """
    values: dict[str, Any] = {}
    places: dict[str, list[str]] = {}
    nested: list[tuple[str, str, list[str]]] = []
    for section, value in doc.items():
        if not isinstance(value, dict):
            values[section] = value
            places.setdefault(section, []).append("top level")
            continue
        for key, inner in value.items():
            values[key] = inner
            places.setdefault(key, []).append(f"[{section}]")
            if isinstance(inner, dict):
                nested.append((section, key, list(inner)))
    return Flattened(values, places, nested)


def flatten_like_sd_scripts(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The namespace train_util.read_config_from_file builds from a parsed TOML document."""
    return flatten(doc).values


# Run inside the user's sd-scripts Python: builds the script's own parser and prints its facts.
REFRESH_CODE = r"""
import argparse, json, os, re, subprocess, sys
root, script = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
os.chdir(root)
try:
    import importlib
    module = importlib.import_module(script[:-3])
    parser = module.setup_parser()
except ModuleNotFoundError as exc:
    print(json.dumps({"error": "missing_module", "module": exc.name, "text": str(exc)}))
    sys.exit(3)
except Exception as exc:
    print(json.dumps({"error": "failed", "text": f"{exc.__class__.__name__}: {exc}"}))
    sys.exit(4)

def kind(action):
    name = action.__class__.__name__.strip("_")
    name = name[:-6] if name.endswith("Action") else name
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()

def plain(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)

options = []
for action in parser._actions:
    if isinstance(action, argparse._HelpAction) or not action.option_strings:
        continue
    t = action.type
    options.append({
        "dest": action.dest,
        "option_strings": list(action.option_strings),
        "kind": kind(action),
        "type": getattr(t, "__name__", None) if t is not None else None,
        "default": plain(action.default),
        "choices": [plain(c) for c in action.choices] if action.choices is not None else None,
        "nargs": action.nargs,
    })
options.sort(key=lambda o: o["dest"])
try:
    commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=True).stdout.strip()
except Exception:
    commit = "unknown"
print(json.dumps({"script": script, "sd_scripts_commit": commit, "options": options}))
"""


@dataclass(frozen=True)
class RefreshResult:
    """What `refresh_contract` wrote."""

    script: str
    path: Path
    contract: Contract


def generate_facts(sd_scripts: Path, script: str, python: str | None = None) -> dict[str, Any]:
    """Run `script`'s own parser in `python` inside the checkout; return the facts as JSON data."""
    name = _check_script(script)
    root = Path(sd_scripts).expanduser().resolve()
    if not (root / name).is_file():
        raise ContractError(
            f"{root} is not an sd-scripts checkout: {name} is missing",
            hint="pass the folder that holds train_network.py with --sd-scripts",
        )
    py = python or sys.executable
    try:
        proc = subprocess.run(
            [py, "-c", REFRESH_CODE, str(root), name],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=600,
            check=False,
        )
    except OSError as exc:
        raise ContractError(
            f"cannot run Python {py}: {exc.strerror}",
            hint="pass the Python of your sd-scripts environment with --python",
        ) from exc
    out = proc.stdout.strip().splitlines()
    try:
        data = json.loads(out[-1]) if out else None
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("error") == "missing_module":
        raise ContractError(
            f"the Python {py} cannot import {name}'s parser: module {data['module']!r} is missing",
            hint="pass the Python of your sd-scripts environment with --python "
            "(it needs torch, transformers and diffusers)",
        )
    if proc.returncode != 0 or not isinstance(data, dict) or "options" not in data:
        detail = data.get("text") if isinstance(data, dict) else None
        tail = detail or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ContractError(
            f"reading {name}'s parser in {root} failed (exit {proc.returncode}): {tail}",
            hint="run the script with --help in that Python to see the error",
        )
    data["note"] = (
        "Argument facts of the argparse parser of this script at this commit, refreshed from "
        f"{root} with {py}."
    )
    return data


def refresh_contract(
    sd_scripts: Path, python: str | None = None, scripts: tuple[str, ...] = SCRIPTS
) -> list[RefreshResult]:
    """Regenerate the facts of `scripts` from a checkout and store them in user_contract_dir()."""
    from kohya_orchestrator.fsutil import atomic_write_text

    results = []
    generated = [(s, generate_facts(sd_scripts, s, python)) for s in scripts]
    folder = user_contract_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for script, data in generated:
        path = user_contract_file(script)
        atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        results.append(RefreshResult(script, path, parse_facts(data, str(path))))
    return results


def diff_with_shipped(contract: Contract) -> tuple[list[str], list[str]]:
    """(added, removed) option names of `contract` against the shipped pinned facts."""
    shipped = load_contract(contract.script, commit=PINNED_COMMIT[:8])
    return (
        sorted(set(contract.options) - set(shipped.options)),
        sorted(set(shipped.options) - set(contract.options)),
    )


def contracts_in_use(scripts: tuple[str, ...] = SCRIPTS) -> list[Contract]:
    """The facts `lint` would use for each script now."""
    return [load_contract(s) for s in scripts]
