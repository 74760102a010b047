"""Writing the settings file DEST/kohya-orch.toml: once, commented, then the user's own.

`prepare` writes it with a comment per setting (from schema.py); if the file exists at all
it is never rewritten, whatever it contains, and the values `prepare` was given that the
file sets otherwise are reported.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.concepts import Concept, concepts_toml
from kohya_orchestrator.config.parse import (
    SD_SCRIPTS_TABLE,
    fmt,
    parse_overrides,
    read_settings_file,
)
from kohya_orchestrator.config.profiles import DEFAULT_PROFILE, PROFILES, profile_values
from kohya_orchestrator.config.schema import SPECS
from kohya_orchestrator.config.settings import resolve_settings
from kohya_orchestrator.config.spec import SECTION_TITLES
from kohya_orchestrator.config.tomlquote import TomlValueError, toml_key, toml_value
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.layout import Layout


@dataclass(frozen=True)
class InitialSettings:
    """What `write_initial_settings` did: the file, whether it wrote it, and why not."""

    path: Path
    written: bool
    notes: list[str]


HEADER = [
    "# kohya-orch settings for this training project.",
    "# Written once by `kohya-orch prepare`; yours to edit from now on (never overwritten).",
    "# `kohya-orch config DEST` renders config.toml from these; `--set key=value` on any",
    "# command overrides one for that run, e.g. --set epochs=10 --set learning_rate=0,0001",
    "# Decimal commas are fine (0,000025). A commented-out line shows the value used now",
    "# (derived or set by the profile); uncomment it to fix that value.",
    "# `kohya-orch settings` lists every setting with its kohya_ss GUI name.",
]


def initial_settings_text(*, header: list[str] | None = None, **values: Any) -> str:
    """The commented settings file for a new project (values given are written as set).

    Raw sd-scripts keys are written last as dotted keys (`sd_scripts.max_grad_norm = 1.0`),
    not under a `[sd_scripts]` header, so a line appended to the file stays a setting.
    A required setting not given (an imported preset's) is written commented out.
    """
    profile = values.get("profile", DEFAULT_PROFILE)
    profile_defaults = profile_values(profile) if profile in PROFILES else {}
    raw = dict(values.pop(SD_SCRIPTS_TABLE, None) or {})
    # Derived settings are shown commented out with the value they get now.
    try:
        derived = resolve_settings(values).values()
    except SettingsError:
        derived = {}
    lines = list(HEADER if header is None else header)
    section = ""
    for spec in SPECS:
        if spec.section != section:
            section = spec.section
            lines += ["", f"# --- {SECTION_TITLES[section]}"]
        value = values.get(spec.key)
        comment = f"  # {spec.comment}"
        if value is not None:
            lines.append(f"{spec.key} = {_writable(spec.key, value)}{comment}")
        elif spec.required:
            lines.append(f'# {spec.key} = "..."  # required: {spec.comment}')
        elif spec.profile:
            shown = toml_value(profile_defaults.get(spec.key, ""))
            lines.append(f"# {spec.key} = {shown}{comment}")
        elif spec.default is not None:
            lines.append(f"{spec.key} = {toml_value(spec.default)}{comment}")
        else:
            example = derived.get(spec.key)
            example = spec.example if example is None else example
            if example is None:  # derived from settings not given (an imported file's)
                lines.append(f"# {spec.key} = ...{comment}")
                continue
            if spec.kind == "concepts":  # one line, so that commenting it out is one `#`
                example = [c.to_dict() for c in example]
            lines.append(f"# {spec.key} = {_writable(spec.key, example)}{comment}")
    lines += [
        "",
        "# Raw sd-scripts keys (not settings above), applied last to config.toml and checked",
        "# by `kohya-orch validate`: one `sd_scripts.KEY = VALUE` line each, e.g.",
        '# sd_scripts.max_grad_norm = 1.0 or sd_scripts.network_args = ["conv_dim=4"]',
    ]
    lines += [
        f"{SD_SCRIPTS_TABLE}.{_writable(k, k, key=True)} = {_writable(k, v)}"
        for k, v in raw.items()
    ]
    return "\n".join(lines) + "\n"


def _writable(name: str, value: Any, *, key: bool = False) -> str:
    """The TOML text of a settings value, or SettingsError saying which one cannot be."""
    if not key and isinstance(value, list) and all(isinstance(v, Concept) for v in value):
        return concepts_toml(value)
    try:
        return toml_key(value) if key else toml_value(value)
    except TomlValueError as exc:
        raise SettingsError(
            f"Cannot write {name} into kohya-orch.toml:", [str(exc)], "Use another value."
        ) from None


def write_initial_settings(
    layout: Layout,
    *,
    name: str,
    trigger: str,
    images: str | Path,
    model: str | Path,
    repeats: int = 7,
    reg: str | Path | None = None,
    reg_repeats: int | None = None,
    class_prompt: str | None = None,
    concepts: Sequence[Concept] = (),
    reg_concepts: Sequence[Concept] = (),
    imported: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> InitialSettings:
    """Write DEST/kohya-orch.toml unless it exists (then it is the user's and kept as is).

    `imported` (settings from `prepare --from`, an [sd_scripts] table among them) lie under
    the values given here; `overrides` (--set strings given to prepare) over them. Both
    are validated and written into the new file. The text is parsed and validated before
    anything is written.
    """
    path = layout.settings_file
    given: dict[str, Any] = {
        "name": name,
        "trigger": trigger,
        "images": str(images),
        "model": str(model),
        "repeats": repeats,
    }
    if reg is not None:
        given["reg"] = str(reg)
        given["reg_repeats"] = reg_repeats if reg_repeats is not None else 1
    if class_prompt is not None:
        given["class_prompt"] = class_prompt
    if concepts:
        given["concepts"] = list(concepts)
    if reg_concepts:
        given["reg_concepts"] = list(reg_concepts)
    if path.exists():
        return InitialSettings(path, False, _differences(path, given))
    from_file = dict(imported or {})
    base = resolve_settings({**from_file, **given}, overrides, source="prepare")
    set_doc, _ = parse_overrides(overrides)
    for key in [*from_file, *set_doc]:
        if key != SD_SCRIPTS_TABLE:
            given[key] = getattr(base, key)
    text = initial_settings_text(**given, sd_scripts=base.sd_scripts)
    resolve_settings(tomllib.loads(text), source=str(path))

    from kohya_orchestrator.fsutil import atomic_write_text

    atomic_write_text(path, text)
    return InitialSettings(path, True, [])


def _differences(path: Path, given: Mapping[str, Any]) -> list[str]:
    """Notes on values given to prepare that the existing settings file sets otherwise."""
    try:
        doc = read_settings_file(path)
    except SettingsError as exc:
        return [f"{path} exists and was kept, but it has a problem: {exc.message}"]
    notes = [f"{path} exists and was kept as is (it is yours to edit)."]
    for key, value in given.items():
        if isinstance(value, list):
            value = [c.to_dict() if isinstance(c, Concept) else c for c in value]
        if key in doc and doc[key] != value:
            notes.append(
                f"{key}: the settings file says {fmt(doc[key])}, this command said "
                f"{fmt(value)}; the file wins (edit it or use --set {key}=...)."
            )
    return notes
