"""Reading the argument facts of a checkout's own parser, through its own Python.

For a commit kohya-orch does not ship facts for: run `setup_parser()` of each training script
in the checkout's Python (importing it pulls torch, transformers and diffusers: seconds, no
weights), and keep the facts under that commit (contract.user_contract_file).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.checkout import sd_scripts_commit
from kohya_orchestrator.sdscripts.contract import (
    LINTED_SCRIPTS,
    Contract,
    load_contract,
    parse_facts,
    user_contract_file,
)

REFRESH_CODE = r"""
import argparse, json, os, re, sys
root, script, commit = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
os.chdir(root)
try:
    import importlib
    module = importlib.import_module(script[:-3])
    parser = module.setup_parser()
except ImportError as exc:
    # exc.name is None when a module imports but fails inside (transformers without CLIP):
    # the message then names what is missing.
    name = exc.name or (re.findall(r"'([^']+)'", str(exc)) or [None])[0]
    print(json.dumps({"error": "missing_module", "module": name, "text": str(exc)}))
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
print(json.dumps({"script": script, "sd_scripts_commit": commit, "options": options}))
"""


@dataclass(frozen=True)
class RefreshResult:
    """What `refresh_contract` wrote."""

    script: str
    path: Path
    contract: Contract


def generate_facts(
    sd_scripts: Path, script: str, python: str | None = None, commit: str = "unknown"
) -> dict[str, Any]:
    """Run `script`'s own parser in `python` inside the checkout; return the facts as JSON data."""
    name = Path(script).name
    root = Path(sd_scripts).expanduser().resolve()
    if not (root / name).is_file():
        raise ContractError(
            f"{root} is not an sd-scripts checkout: {name} is missing",
            hint="pass the folder that holds train_network.py with --sd-scripts",
        )
    py = python or sys.executable
    try:
        proc = subprocess.run(
            [py, "-c", REFRESH_CODE, str(root), name, commit],
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
        missing = f"module {data['module']!r} is missing" if data.get("module") else data["text"]
        raise ContractError(
            f"the Python {py} cannot import {name}'s parser: {missing}",
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
    sd_scripts: Path, python: str | None = None, scripts: tuple[str, ...] | None = None
) -> list[RefreshResult]:
    """Read the facts of every training script of the checkout and keep them by its commit."""
    from kohya_orchestrator.fsutil import atomic_write_text

    root = Path(sd_scripts).expanduser().resolve()
    wanted = scripts or tuple(s for s in LINTED_SCRIPTS if (root / s).is_file())
    if not wanted or not (root / wanted[0]).is_file():
        missing = wanted[0] if wanted else "train_network.py"
        raise ContractError(
            f"{root} is not an sd-scripts checkout: {missing} is missing",
            hint="pass the folder that holds train_network.py with --sd-scripts",
        )
    commit = sd_scripts_commit(root)
    if commit is None:
        raise ContractError(
            f"cannot tell which commit {root} is at (no .git folder)",
            hint="facts are kept per commit: use a git checkout of sd-scripts (`make sd-scripts`)",
        )
    generated = [(s, generate_facts(root, s, python, commit)) for s in wanted]
    results = []
    for script, data in generated:
        path = user_contract_file(script, commit)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        results.append(RefreshResult(script, path, parse_facts(data, str(path))))
    return results


def diff_with_newest(contract: Contract) -> tuple[list[str], list[str]]:
    """(added, removed) option names of `contract` against the newest shipped facts."""
    shipped = load_contract(contract.script)
    return (
        sorted(set(contract.options) - set(shipped.options)),
        sorted(set(shipped.options) - set(contract.options)),
    )
