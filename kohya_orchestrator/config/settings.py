"""The project's settings (DEST/kohya-orch.toml): defaults, profiles, overrides, derived values.

Precedence: defaults < profile < settings file < `--set key=value`; then the derived values
(keep_tokens, alpha, buckets, ...) are filled in and each is explained in `Settings.notes`.
Every setting is declared once, in schema.py; the file is written by settings_file.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.parse import (
    SD_SCRIPTS_TABLE,
    collect,
    fmt,
    parse_overrides,
    read_settings_file,
)
from kohya_orchestrator.config.profiles import DEFAULT_PROFILE, PROFILES, profile_values
from kohya_orchestrator.config.schema import SPECS, Settings
from kohya_orchestrator.config.spec import parse_resolution
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.layout import Layout

__all__ = [
    "SD_SCRIPTS_TABLE",
    "Settings",
    "bucket_range",
    "load_settings",
    "parse_overrides",
    "parse_resolution",
    "read_settings_file",
    "resolve_settings",
    "trigger_token_count",
]


def trigger_token_count(trigger: str) -> int:
    """The comma-separated tokens of a trigger (`takeru_higa, takeru higa` -> 2)."""
    return len([t for t in trigger.split(",") if t.strip()])


def bucket_range(resolution: tuple[int, int], step: int) -> tuple[int, int]:
    """Default min/max bucket side for a resolution: half and twice its longer side.

    The minimum never passes the shorter side (rounded down to `step`): sd-scripts asserts
    min(resolution) >= min_bucket_reso, so 2048,512 gets 512, not 1024.
    """
    side = max(resolution)
    lo = max(step, (side // 2) // step * step)
    lo = min(lo, max(step, min(resolution) // step * step))
    hi = max(lo, (side * 2) // step * step)
    return lo, hi


def load_settings(layout: Layout, overrides: Sequence[str] = ()) -> Settings:
    """Read DEST/kohya-orch.toml, apply the profile and --set overrides, derive the rest.

    Every problem (unknown keys, wrong types, bad choices, missing required settings) is
    collected and raised at once as SettingsError.
    """
    path = layout.settings_file
    file_notes: list[str] = []
    doc = read_settings_file(path, file_notes)
    settings = resolve_settings(doc, overrides, source=str(path), path=path)
    settings.notes[:0] = file_notes
    return settings


def resolve_settings(
    doc: Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    source: str = "settings",
    path: Path | None = None,
) -> Settings:
    """Settings from a parsed settings document plus --set strings (pure)."""
    problems: list[str] = []
    file_values, file_raw = collect(doc, source, from_cli=False, problems=problems)
    set_doc, set_problems = parse_overrides(overrides)
    problems.extend(set_problems)
    set_values, set_raw = collect(set_doc, "--set", from_cli=True, problems=problems)

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for spec in SPECS:
        merged[spec.key], origins[spec.key] = spec.default, "default"
    profile = set_values.get("profile", file_values.get("profile", DEFAULT_PROFILE))
    if profile in PROFILES:
        for key, value in profile_values(profile).items():
            merged[key], origins[key] = value, "profile"
    for key, value in file_values.items():
        merged[key], origins[key] = value, "file"
    for key, value in set_values.items():
        merged[key], origins[key] = value, "--set"
    for spec in SPECS:
        if spec.required and not merged.get(spec.key):
            problems.append(
                f'{source}: {spec.key} is missing; add {spec.key} = "..." ({spec.comment})'
            )
    problems.extend(_name_problems(merged, origins, source))
    if problems:
        count = len(problems)
        raise SettingsError(
            f"{count} problem{'s' if count != 1 else ''} in the settings:",
            problems,
            "Fix them in kohya-orch.toml or in the --set values; `kohya-orch settings` lists "
            "every setting with its kohya_ss GUI name.",
        )
    given = {key for key, origin in origins.items() if origin in ("file", "--set")}
    notes = _derive(merged, origins, given)
    # Where each raw key came from, for messages that name their source.
    origins |= {f"{SD_SCRIPTS_TABLE}.{k}": "file" for k in file_raw}
    origins |= {f"{SD_SCRIPTS_TABLE}.{k}": "--set" for k in set_raw}
    return Settings(
        **merged, sd_scripts={**file_raw, **set_raw}, origins=origins, notes=notes, path=path
    )


def _name_problems(merged: Mapping[str, Any], origins: Mapping[str, str], source: str) -> list[str]:
    """The name becomes file names (`<name>-000001.safetensors`), the trigger starts every
    caption and the class prompt names the regularisation folder: check them as such."""
    from kohya_orchestrator.dataset.captions import parse_trigger
    from kohya_orchestrator.dataset.names import validate_file_prefix
    from kohya_orchestrator.errors import InputError

    checks = (
        ("name", lambda v: validate_file_prefix(v, what="name")),
        ("trigger", parse_trigger),
        ("class_prompt", lambda v: validate_file_prefix(v, what="class prompt")),
    )
    problems = []
    for key, check in checks:
        value = merged.get(key)
        if not isinstance(value, str) or not value:
            continue  # missing or of the wrong type: reported already
        try:
            check(value)
        except InputError as exc:
            where = "--set" if origins.get(key) == "--set" else source
            problems.append(f"{where}: {exc.message}")
    return problems


def _derive(merged: dict[str, Any], origins: dict[str, str], given: set[str]) -> list[str]:
    """Fill in the derived values (in place) and return a note explaining each."""
    notes: list[str] = []

    def derive(key: str, value: Any, note: str | None = None) -> None:
        merged[key], origins[key] = value, "derived"
        if note:
            notes.append(note)

    if "keep_tokens" not in given:
        count = trigger_token_count(merged["trigger"])
        derive(
            "keep_tokens",
            count,
            f"keep_tokens = {count}: the trigger {fmt(merged['trigger'])} has "
            f"{count} comma-separated token(s), kept first when captions are shuffled.",
        )
    if "network_alpha" not in given:
        alpha = merged["network_dim"] / 2
        rank = merged["network_dim"]
        derive("network_alpha", alpha, f"network_alpha = {alpha:g}: rank {rank} / 2.")
    if merged["lr_scheduler"] == "constant" and merged["warmup_ratio"] > 0:
        derive(
            "lr_scheduler",
            "constant_with_warmup",
            f"lr_scheduler = constant_with_warmup: sd-scripts stops with a ValueError when "
            f"'constant' meets a warmup ({merged['warmup_ratio']:g} of the steps); set "
            "warmup_ratio = 0 to keep plain constant.",
        )
    lo, hi = bucket_range(parse_resolution(merged["resolution"]), merged["bucket_reso_steps"])
    if "min_bucket_reso" not in given:
        derive("min_bucket_reso", lo)
    if "max_bucket_reso" not in given:
        derive("max_bucket_reso", hi)
    if "sample_size" not in given:
        derive("sample_size", merged["resolution"])
    if (
        merged["max_data_loader_n_workers"] == 0
        and merged["persistent_data_loader_workers"]
        and "persistent_data_loader_workers" not in given
    ):
        derive(
            "persistent_data_loader_workers",
            False,
            "persistent_data_loader_workers = false: max_data_loader_n_workers = 0, and torch's "
            "DataLoader refuses persistent workers without workers.",
        )
    return notes
