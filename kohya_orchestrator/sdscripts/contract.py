"""What sd-scripts accepts: the argparse facts of its scripts at each commit, and its flattening.

The facts ship in data/ (one JSON file per script and sd-scripts commit, the parser dumped by
running that commit's own code; versions.py lists the commits). Facts of another commit are
read from that checkout's own parser (refresh.py) and kept per commit in
`$KOHYA_ORCH_CONTRACT_DIR`, or else `${XDG_DATA_HOME:-~/.local/share}/kohya-orch/contract/`,
as `<commit>/<script stem>.json`. facts.py decides which facts a command uses.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.trainers import default_script, rendered_scripts, scripts
from kohya_orchestrator.sdscripts.versions import NEWEST, RELEASES, Release, release_of

# The training scripts kohya-orch renders configs for; every script with facts is lintable.
SCRIPTS = rendered_scripts()
LINTED_SCRIPTS = scripts()
DEFAULT_SCRIPT = default_script()
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

    @property
    def version(self) -> str:
        """The commit as people know it: `6721028c (kohya_ss v26 pin)`, or the short hash."""
        release = release_of(self.commit)
        return release.describe() if release is not None else self.short_commit

    def describe(self) -> str:
        """One line: which facts are in use."""
        return (
            f"{self.script} at sd-scripts {self.version}: "
            f"{len(self.options)} options ({self.source})"
        )


def user_contract_dir() -> Path:
    """Where `contract refresh` stores facts (see the module docstring)."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kohya-orch" / "contract"


def user_contract_file(script: str, commit: str) -> Path:
    """Where the facts of `script` at `commit`, read from a checkout, are kept."""
    return user_contract_dir() / commit / f"{Path(script).stem}.json"


def shipped_file(script: str, release: Release) -> Path:
    return DATA_DIR / f"{Path(script).stem}.{release.label}.json"


def shipped_releases(script: str) -> list[Release]:
    """The releases that ship facts for `script` (v0.9.1 has no Flux or SD3 script)."""
    return [r for r in RELEASES if shipped_file(script, r).is_file()]


def _check_script(script: str) -> str:
    name = Path(script).name
    if name not in LINTED_SCRIPTS and not any(DATA_DIR.glob(f"{Path(name).stem}.*.json")):
        raise ContractError(
            f"unsupported training script {script!r}",
            hint=f"use one of: {', '.join(LINTED_SCRIPTS)}",
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
    """The facts of `script`: an explicit `facts` file, else those of `commit` (shipped, or
    read earlier from a checkout at that commit), else the newest shipped (NEWEST)."""
    name = _check_script(script)
    if facts is not None:
        contract = read_facts_file(Path(facts))
        if Path(contract.script).name != name:
            raise ContractError(
                f"contract file {facts} describes {contract.script}, not {name}",
                hint=f"pass the facts of {name}, or --script {contract.script}",
            )
        return contract
    release = NEWEST if commit is None else release_of(commit)
    if release is not None:
        path = shipped_file(name, release)
        if not path.is_file():
            have = ", ".join(r.label for r in shipped_releases(name)) or "none"
            raise ContractError(
                f"sd-scripts {release.describe()} has no {name}",
                hint=f"its facts ship for: {have}",
            )
        contract = read_facts_file(path)
        return Contract(contract.script, contract.commit, f"shipped {path.name}", contract.options)
    assert commit is not None
    cached = user_contract_file(name, commit)
    if cached.is_file():
        return read_facts_file(cached)
    have = ", ".join(r.label for r in shipped_releases(name))
    raise ContractError(
        f"no argument facts for {name} at sd-scripts {commit[:10]}",
        hint=f"shipped: {have}; or run `kohya-orch contract refresh --sd-scripts DIR`",
    )


def scripts_with_option(key: str) -> list[str]:
    """The training scripts whose newest shipped facts have option `key` (for "it belongs to
    flux_train_network.py" in an SD3 config)."""
    return [s for s in LINTED_SCRIPTS if key in _newest_options(s)]


@functools.cache
def _newest_options(script: str) -> frozenset[str]:
    return frozenset(load_contract(script).options)


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
