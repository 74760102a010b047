"""Which argument facts a command uses: the one rule, from the sd-scripts checkout in use.

Every command that renders or judges a config (config, validate, plan, train, doctor,
--smoke) comes here: the checkout in use (found as `train` finds it) -> its commit (read from
its git files, no `git` needed) -> the facts of that commit. Facts ship for the commits in
versions.py; for another commit the checkout's own parser is read through its Python, once,
and kept by commit (refresh.py). When that is not possible, the newest shipped facts are used
and `FactsChoice.warning` says so, naming the commit and the command that fixes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kohya_orchestrator.errors import ContractError
from kohya_orchestrator.sdscripts.checkout import (
    locate_python,
    locate_sd_scripts,
    sd_scripts_commit,
)
from kohya_orchestrator.sdscripts.contract import Contract, load_contract, user_contract_file
from kohya_orchestrator.sdscripts.versions import NEWEST, release_of


@dataclass(frozen=True)
class FactsChoice:
    """The facts a command checks against, and how they were chosen."""

    contract: Contract
    checkout: Path | None = None
    commit: str | None = None
    how: str = ""  # where the checkout was found, or what was tried
    warning: str | None = None
    hint: str | None = None

    def line(self) -> str:
        """The one line every command shows: which sd-scripts, whose facts."""
        version = f"sd-scripts {self.contract.version}"
        if self.checkout is None:
            return f"{version}: no sd-scripts checkout found, so the pinned commit's facts"
        if self.warning is not None:
            return f"{version} (facts of the pinned commit: see the warning)"
        read = "" if release_of(self.contract.commit) else ", facts read from its own parser"
        return f"{version}{read}, at {self.checkout}"


def choose_facts(
    script: str,
    *,
    sd_scripts: Path | None = None,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    read_parser: bool = True,
) -> FactsChoice:
    """The facts of `script` for the checkout in use (see the module docstring).

    `read_parser=False` never starts the checkout's Python (the newest facts and a warning
    instead, for a commit without facts).
    """
    env = os.environ if environ is None else environ
    folder, how = locate_sd_scripts(script, sd_scripts, env, Path.home() if home is None else home)
    if folder is None or not (folder / script).is_file():
        return FactsChoice(load_contract(script), how=how)
    commit = sd_scripts_commit(folder)
    fix = f"kohya-orch contract refresh --sd-scripts {folder}"
    if commit is None:
        return FactsChoice(
            load_contract(script),
            folder,
            None,
            how,
            f"cannot tell which commit {folder} is at (no .git folder): checked against the "
            f"facts of {NEWEST.describe()}",
            "use a git checkout of sd-scripts (`make sd-scripts`), so its commit is known",
        )
    if release_of(commit) is not None or user_contract_file(script, commit).is_file():
        return FactsChoice(load_contract(script, commit=commit), folder, commit, how)
    problem = "kohya-orch did not start its Python (--dry-run)"
    if read_parser:
        from kohya_orchestrator.sdscripts.refresh import refresh_contract

        py, _ = locate_python(python, folder)
        try:
            refresh_contract(folder, py, (script,))
            return FactsChoice(load_contract(script, commit=commit), folder, commit, how)
        except ContractError as exc:
            problem = f"reading its parser failed: {exc.message}"
            fix += f" --python {py}"
    return FactsChoice(
        load_contract(script),
        folder,
        commit,
        how,
        f"{folder} is at sd-scripts {commit[:10]}, a commit kohya-orch ships no facts for, and "
        f"{problem}: checked against the facts of {NEWEST.describe()}",
        f"run `{fix}` once (it reads that checkout's own options and keeps them)",
    )
