"""What the lint reports: problems (errors and warnings apart), and the input every rule gets.

Kept apart from the linter and the rules, so that every rule module imports the report
without importing the linter that runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kohya_orchestrator.sdscripts.contract import Contract
from kohya_orchestrator.sdscripts.trainers import Trainer


def shown(value: Any) -> str:
    """A value as a message shows it, the way it looks in a TOML file (for reading, not
    for writing: config/tomlquote.py writes TOML)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {shown(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, int | float) else str(value)


@dataclass(frozen=True)
class Problem:
    """One finding: the key it is about, what is wrong, and how to fix it."""

    key: str
    message: str
    hint: str = ""

    def render(self) -> str:
        return f"{self.message}\n    hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "message": self.message, "hint": self.hint}


@dataclass
class LintReport:
    """Everything `lint` found; `.ok` when there is no error (warnings and notes allowed).

    The severity policy (README, "What validate reports"): an error only where sd-scripts
    would crash, refuse, or train something other than what the file says; a warning where
    the run starts but likely not as meant; a note where sd-scripts ignores a key whose
    value changes nothing.
    """

    script: str
    contract: str
    config_path: str | None = None
    profile: str | None = None
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    # Which script the file was judged as, and why (script_choice.choose_script).
    script_reason: str | None = None
    # Which facts were used and why, in one line (facts.FactsChoice.line()).
    facts: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, key: str, message: str, hint: str = "") -> None:
        self.errors.append(Problem(key, message, hint))

    def warn(self, key: str, message: str, hint: str = "") -> None:
        self.warnings.append(Problem(key, message, hint))

    def note(self, key: str, message: str, hint: str = "") -> None:
        self.notes.append(Problem(key, message, hint))

    def extend(self, other: LintReport) -> None:
        """Add every problem of `other` (a second lint of the same run)."""
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        self.notes.extend(other.notes)

    def messages(self) -> list[str]:
        """Every message, errors first (handy in tests and in ProblemsError)."""
        return [p.message for p in self.errors] + [p.message for p in self.warnings]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.config_path,
            "script": self.script,
            "script_reason": self.script_reason,
            "contract": self.contract,
            "facts": self.facts,
            "profile": self.profile,
            "ok": self.ok,
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
            "notes": [p.to_dict() for p in self.notes],
        }


@dataclass(frozen=True)
class RuleInput:
    """What every rule reads: the values that passed the type check, the whole flattened
    namespace, the facts and trainer of the script, the profile, and the report it adds to."""

    values: Mapping[str, Any]
    flat: Mapping[str, Any]
    contract: Contract
    trainer: Trainer
    report: LintReport
    profile: str | None = None
