"""The settings glossary (`kohya-orch settings`): every setting, its values, its GUI name.

Built from the one declaration of each setting (schema.py) and the profiles: the kind, the
default, the value under each profile, the kohya_ss GUI field and sd-scripts key it stands
for, other names people write for it, and one line of advice.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from kohya_orchestrator.config.profiles import PROFILES
from kohya_orchestrator.config.schema import SPECS
from kohya_orchestrator.config.spec import FLAG, SECTION_TITLES, Spec
from kohya_orchestrator.errors import InputError

_KIND_WORDS = {
    "str": "text",
    "int": "whole number",
    "float": "number",
    "bool": "true/false",
    "resolution": '"WIDTH,HEIGHT"',
    "concepts": "list of folders",
}


@dataclass(frozen=True)
class Entry:
    """One setting as the glossary shows it."""

    key: str
    section: str
    kind: str
    default: Any
    required: bool
    by_profile: dict[str, Any]
    gui: str | None
    sd_scripts: list[str]
    aliases: list[str]
    advice: str
    derived: bool = False

    def kind_text(self) -> str:
        return self.kind

    def default_text(self) -> str:
        if self.required:
            return "required"
        if self.derived:
            return "derived from the others unless set (a note says how)"
        values = {_shown(v) for v in self.by_profile.values()}
        if len(values) == 1:
            return f"default {values.pop()}"
        return "by profile: " + ", ".join(f"{p} {_shown(v)}" for p, v in self.by_profile.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "section": self.section,
            "kind": self.kind,
            "default": self.default,
            "required": self.required,
            "by_profile": self.by_profile,
            "gui": self.gui,
            "sd_scripts": self.sd_scripts,
            "aliases": self.aliases,
            "advice": self.advice,
            "derived": self.derived,
        }


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "none" if not value else f"{len(value)} folder(s)"
    return str(value)


def entry(spec: Spec) -> Entry:
    """The glossary entry of one setting."""
    kind = _KIND_WORDS.get(spec.kind, spec.kind)
    if spec.choices is not None:
        kind = f"one of {', '.join(spec.choices)}" + (" (or another)" if spec.accepts else "")
    by_profile = {
        name: values.get(spec.key, spec.default) if spec.profile else spec.default
        for name, values in PROFILES.items()
    }
    if spec.render == FLAG:
        args = [f"{choice} = true" for choice in spec.choices or ()]
    else:
        args = [spec.arg] if spec.arg else []
    return Entry(
        key=spec.key,
        section=spec.section,
        kind=kind,
        default=spec.default,
        required=spec.required,
        by_profile=by_profile,
        gui=spec.gui,
        sd_scripts=args,
        aliases=list(spec.aliases),
        advice=spec.comment,
        derived=spec.optional and spec.default is None and spec.example is None,
    )


def _names(spec: Spec) -> set[str]:
    names = {spec.key, *spec.aliases}
    names |= {n for n in (spec.gui, spec.arg) if n}
    if spec.render == FLAG:
        names |= set(spec.choices or ())
    return {n.lower() for n in names}


def glossary(query: str | None = None) -> list[Entry]:
    """Every setting, or those a name means: a setting, an alias, a kohya_ss GUI field or an
    sd-scripts key (`instance_prompt`, `--instance-prompt`, `sdpa`); InputError otherwise."""
    if query is None:
        return [entry(spec) for spec in SPECS]
    wanted = query.strip().lstrip("-").replace("-", "_").lower()
    found = [entry(spec) for spec in SPECS if wanted in _names(spec)]
    if found:
        return found
    every = sorted(set().union(*(_names(spec) for spec in SPECS)))
    close = difflib.get_close_matches(wanted, every, n=3, cutoff=0.6)
    maybe = f" Close: {', '.join(close)}." if close else ""
    raise InputError(
        f"No setting, kohya_ss GUI field or sd-scripts key is called {query!r}.{maybe}",
        "`kohya-orch settings` lists them all.",
    )


def section_title(section: str) -> str:
    return SECTION_TITLES[section]
