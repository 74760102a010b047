"""The project's settings (DEST/kohya-orch.toml): defaults, profiles, overrides, derived values.

Precedence: defaults < profile < settings file < `--set key=value`. The file is written once
by `prepare` (`write_initial_settings`) and from then on belongs to the user: if it exists at
all it is never rewritten, whatever it contains.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.parse import (
    SD_SCRIPTS_TABLE,
    collect,
    fmt,
    parse_overrides,
    parse_resolution,
    read_settings_file,
)
from kohya_orchestrator.config.profiles import DEFAULT_PROFILE, PROFILES, profile_values
from kohya_orchestrator.config.schema import SPECS
from kohya_orchestrator.config.tomlquote import TomlValueError, toml_key, toml_value
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.layout import Layout

__all__ = [
    "SD_SCRIPTS_TABLE",
    "InitialSettings",
    "Settings",
    "bucket_range",
    "initial_settings_text",
    "load_settings",
    "parse_overrides",
    "parse_resolution",
    "read_settings_file",
    "resolve_settings",
    "trigger_token_count",
    "write_initial_settings",
]


@dataclass
class Settings:
    """The resolved settings of one project: every derived value filled in."""

    name: str = ""
    trigger: str = ""
    images: str = ""
    repeats: int = 7
    model: str = ""
    reg: str | None = None
    reg_repeats: int | None = None
    class_prompt: str | None = None
    profile: str = DEFAULT_PROFILE
    resolution: str = "512,512"
    enable_bucket: bool = True
    bucket_reso_steps: int = 64
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    caption_extension: str = ".txt"
    shuffle_caption: bool = True
    keep_tokens: int = 1
    flip_aug: bool = True
    epochs: int = 15
    save_every_n_epochs: int = 1
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2.5e-5
    unet_lr: float = 2.5e-5
    text_encoder_lr: float = 2.5e-5
    lr_scheduler: str = "constant"
    warmup_ratio: float = 0.05
    network_dim: int = 16
    network_alpha: float = 8.0
    seed: int = 42
    save_state: bool = False
    clip_skip: int = 2
    mixed_precision: str = "no"
    save_precision: str = "fp16"
    attention: str = "sdpa"
    optimizer: str = "AdamW"
    gradient_checkpointing: bool = True
    cache_latents: bool = True
    cache_latents_to_disk: bool = True
    max_data_loader_n_workers: int = 0
    persistent_data_loader_workers: bool = False
    sample_every_n_epochs: int = 0
    sample_sampler: str = "euler_a"
    sample_steps: int = 28
    sample_cfg: float = 7.0
    sample_seed: int = 1234
    sample_size: str = "512,512"
    # Raw sd-scripts keys from the [sd_scripts] table, applied last in the config.
    sd_scripts: dict[str, Any] = field(default_factory=dict)
    # Where each setting came from: default, profile, file or --set.
    origins: dict[str, str] = field(default_factory=dict)
    # Derived values explained to the user ("keep_tokens = 4: ...").
    notes: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def sampling(self) -> bool:
        """True when sample images are generated during training."""
        return self.sample_every_n_epochs > 0

    @property
    def width_height(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)

    @property
    def sample_width_height(self) -> tuple[int, int]:
        return parse_resolution(self.sample_size)

    def values(self) -> dict[str, Any]:
        """The settings as a plain dict (bookkeeping fields left out)."""
        data = asdict(self)
        for key in ("origins", "notes", "path"):
            data.pop(key)
        return data


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


def load_settings(dest: Path, overrides: Sequence[str] = ()) -> Settings:
    """Read DEST/kohya-orch.toml, apply the profile and --set overrides, derive the rest.

    Every problem (unknown keys, wrong types, bad choices, missing required settings) is
    collected and raised at once as SettingsError.
    """
    path = Layout(dest).settings_file
    doc = read_settings_file(path)
    return resolve_settings(doc, overrides, source=str(path), path=path)


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
        if spec.default is not None:
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
            "Fix them in kohya-orch.toml or in the --set values.",
        )
    sd_raw = {**file_raw, **set_raw}
    settings = Settings(**merged, sd_scripts=sd_raw, origins=origins, path=path)
    _derive(settings, merged)
    return settings


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


def _derive(s: Settings, given: Mapping[str, Any]) -> None:
    """Fill in the derived values and explain each to the user in `s.notes`."""
    if "keep_tokens" not in given:
        s.keep_tokens = trigger_token_count(s.trigger)
        s.origins["keep_tokens"] = "derived"
        s.notes.append(
            f"keep_tokens = {s.keep_tokens}: the trigger {fmt(s.trigger)} has "
            f"{s.keep_tokens} comma-separated token(s), kept first when captions are shuffled."
        )
    if "network_alpha" not in given:
        s.network_alpha = s.network_dim / 2
        s.origins["network_alpha"] = "derived"
        s.notes.append(f"network_alpha = {s.network_alpha:g}: rank {s.network_dim} / 2.")
    if s.lr_scheduler == "constant" and s.warmup_ratio > 0:
        s.lr_scheduler = "constant_with_warmup"
        s.origins["lr_scheduler"] = "derived"
        s.notes.append(
            f"lr_scheduler = constant_with_warmup: sd-scripts stops with a ValueError when "
            f"'constant' meets a warmup ({s.warmup_ratio:g} of the steps); set "
            "warmup_ratio = 0 to keep plain constant."
        )
    lo, hi = bucket_range(s.width_height, s.bucket_reso_steps)
    if "min_bucket_reso" not in given:
        s.min_bucket_reso = lo
        s.origins["min_bucket_reso"] = "derived"
    if "max_bucket_reso" not in given:
        s.max_bucket_reso = hi
        s.origins["max_bucket_reso"] = "derived"
    if "sample_size" not in given:
        s.sample_size = s.resolution
        s.origins["sample_size"] = "derived"
    persistent_set = s.origins.get("persistent_data_loader_workers") in ("file", "--set")
    if s.max_data_loader_n_workers == 0 and s.persistent_data_loader_workers and not persistent_set:
        s.persistent_data_loader_workers = False
        s.origins["persistent_data_loader_workers"] = "derived"
        s.notes.append(
            "persistent_data_loader_workers = false: max_data_loader_n_workers = 0, and torch's "
            "DataLoader refuses persistent workers without workers."
        )


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitialSettings:
    """What `write_initial_settings` did: the file, whether it wrote it, and why not."""

    path: Path
    written: bool
    notes: list[str]


def initial_settings_text(**values: Any) -> str:
    """The commented settings file for a new project (values given are written as set)."""
    from kohya_orchestrator.config.schema import EXAMPLES, PROFILE_KEYS, SECTION_TITLES

    profile = values.get("profile", DEFAULT_PROFILE)
    profile_defaults = profile_values(profile) if profile in PROFILES else {}
    raw = dict(values.pop(SD_SCRIPTS_TABLE, None) or {})
    # Derived settings are shown commented out with the value they get now.
    try:
        derived = resolve_settings(values).values()
    except SettingsError:
        derived = {}
    lines = [
        "# kohya-orch settings for this training project.",
        "# Written once by `kohya-orch prepare`; yours to edit from now on (never overwritten).",
        "# `kohya-orch config DEST` renders config.toml from these; `--set key=value` on any",
        "# command overrides one for that run, e.g. --set epochs=10 --set learning_rate=0,0001",
        "# Decimal commas are fine (0,000025). A commented-out line shows the value used now",
        "# (derived or set by the profile); uncomment it to fix that value.",
    ]
    section = ""
    for spec in SPECS:
        if spec.section != section:
            section = spec.section
            lines += ["", f"# --- {SECTION_TITLES[section]}"]
        value = values.get(spec.key)
        comment = f"  # {spec.comment}"
        if value is not None:
            lines.append(f"{spec.key} = {_writable(spec.key, value)}{comment}")
        elif spec.key in PROFILE_KEYS:
            shown = toml_value(profile_defaults.get(spec.key, ""))
            lines.append(f"# {spec.key} = {shown}{comment}")
        elif spec.default is not None:
            lines.append(f"{spec.key} = {toml_value(spec.default)}{comment}")
        else:
            example = derived.get(spec.key)
            example = EXAMPLES.get(spec.key) if example is None else example
            lines.append(f"# {spec.key} = {_writable(spec.key, example)}{comment}")
    lines += [
        "",
        "# Raw sd-scripts keys, applied last to config.toml (checked by `kohya-orch validate`),",
        '# e.g. max_grad_norm = 1.0 or network_args = ["conv_dim=4", "conv_alpha=1"]',
        f"[{SD_SCRIPTS_TABLE}]",
    ]
    lines += [f"{_writable(k, k, key=True)} = {_writable(k, v)}" for k, v in raw.items()]
    return "\n".join(lines) + "\n"


def _writable(name: str, value: Any, *, key: bool = False) -> str:
    """The TOML text of a settings value, or SettingsError saying which one cannot be."""
    try:
        return toml_key(value) if key else toml_value(value)
    except TomlValueError as exc:
        raise SettingsError(
            f"Cannot write {name} into kohya-orch.toml:", [str(exc)], "Use another value."
        ) from None


def write_initial_settings(
    dest: Path,
    *,
    name: str,
    trigger: str,
    images: str | Path,
    model: str | Path,
    repeats: int = 7,
    reg: str | Path | None = None,
    reg_repeats: int | None = None,
    class_prompt: str | None = None,
    overrides: Sequence[str] = (),
) -> InitialSettings:
    """Write DEST/kohya-orch.toml unless it exists (then it is the user's and kept as is).

    `overrides` (--set strings given to prepare) are validated and written into the new
    file. The text is parsed and validated before anything is written.
    """
    path = Layout(dest).settings_file
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
    if path.exists():
        return InitialSettings(path, False, _differences(path, given))
    base = resolve_settings(given, overrides, source="prepare")
    set_doc, _ = parse_overrides(overrides)
    for key in set_doc:
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
        if key in doc and doc[key] != value:
            notes.append(
                f"{key}: the settings file says {fmt(doc[key])}, this command said "
                f"{fmt(value)}; the file wins (edit it or use --set {key}=...)."
            )
    return notes
