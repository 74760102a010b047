"""The project's settings (DEST/kohya-orch.toml): defaults, profiles, overrides, derived values.

Precedence: defaults < profile < settings file < `--set key=value`. The file is written once
by `prepare` (`write_initial_settings`) and from then on belongs to the user: if it exists at
all it is never rewritten, whatever it contains.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.profiles import DEFAULT_PROFILE, PROFILES, profile_values
from kohya_orchestrator.settings_spec import ALIASES, SPEC_BY_KEY, SPECS, Spec
from kohya_orchestrator.tomlquote import TomlValueError, toml_key, toml_value

SD_SCRIPTS_TABLE = "sd_scripts"
# `0,000025`: the decimal comma the user writes. Bare in TOML it is a syntax error, so the
# file reader turns it into a dot only on `key = 1,5` lines, which no valid TOML contains.
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_COMMA_LINE = re.compile(r"^(\s*[A-Za-z0-9_-]+\s*=\s*)([+-]?\d+),(\d+)(\s*(?:#.*)?)$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


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


def parse_resolution(text: str) -> tuple[int, int]:
    """`"512,512"` or `"512"` -> (512, 512); ValueError when it is not that shape."""
    parts = [p.strip() for p in re.split(r"[,x]", str(text))]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    w, h = int(parts[0]), int(parts[1])
    if w < 64 or h < 64:
        raise ValueError(text)
    return w, h


def trigger_token_count(trigger: str) -> int:
    """The comma-separated tokens of a trigger (`takeru_higa, takeru higa` -> 2)."""
    return len([t for t in trigger.split(",") if t.strip()])


def bucket_range(resolution: tuple[int, int], step: int) -> tuple[int, int]:
    """Default min/max bucket side for a resolution: half and twice its longer side."""
    side = max(resolution)
    lo = max(step, (side // 2) // step * step)
    hi = max(lo, (side * 2) // step * step)
    return lo, hi


# -- reading ------------------------------------------------------------------------------


def _did_you_mean(key: str) -> str:
    if key in ALIASES:
        return f" (did you mean {ALIASES[key]!r}?)"
    close = difflib.get_close_matches(key, list(SPEC_BY_KEY), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fmt(value: Any) -> str:
    try:
        return toml_value(value)
    except ValueError:
        return repr(value)


def _coerce(spec: Spec, value: Any, *, from_cli: bool) -> tuple[Any, str | None]:
    """The value converted to the setting's kind, or (None, what is wrong and the fix)."""
    kind = spec.kind
    if from_cli and isinstance(value, str):
        value = _cli_scalar(kind, value)
    if kind == "bool":
        if isinstance(value, bool):
            return value, None
        return None, "must be true or false (without quotes)"
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            result: Any = value
        else:
            return None, "must be a whole number (without quotes)"
    elif kind == "float":
        if isinstance(value, str) and _DECIMAL_COMMA.match(value.strip()):
            value = float(value.strip().replace(",", "."))
        if isinstance(value, int | float) and not isinstance(value, bool):
            result = float(value)
        else:
            return None, "must be a number such as 2.5e-5 or 0,000025"
    elif kind == "resolution":
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            return None, 'must be "WIDTH,HEIGHT" such as "512,512"'
        try:
            w, h = parse_resolution(value)
        except ValueError:
            return None, 'must be "WIDTH,HEIGHT" such as "512,512" (each at least 64)'
        return f"{w},{h}", None
    else:
        if not isinstance(value, str):
            return None, "must be text in quotes"
        if spec.choices is not None and value not in spec.choices:
            close = difflib.get_close_matches(value, spec.choices, n=1, cutoff=0.5)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            return None, f"must be one of {', '.join(spec.choices)}{maybe}"
        return value, None
    if spec.minimum is not None and result < spec.minimum:
        return None, f"must be at least {spec.minimum:g}"
    return result, None


def _cli_scalar(kind: str, text: str) -> Any:
    """A --set value read as the setting's kind: `768,768`, `0,000025`, `yes`, `cosine`."""
    raw = text.strip()
    if kind == "bool":
        low = raw.lower()
        return True if low in _TRUE else False if low in _FALSE else raw
    if kind == "int":
        return int(raw) if re.fullmatch(r"[+-]?\d+", raw) else raw
    if kind == "float":
        if _DECIMAL_COMMA.match(raw):
            return float(raw.replace(",", "."))
        try:
            return float(raw)
        except ValueError:
            return raw
    if raw[:1] in {'"', "'"}:
        parsed = _toml_scalar(raw)
        if isinstance(parsed, str):
            return parsed
    return text


def _toml_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(overrides: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """`--set` strings -> ({key: raw value}, problems). `sd_scripts.KEY=V` sets a raw key."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set epochs=10")
            continue
        if key.startswith(SD_SCRIPTS_TABLE + "."):
            sub = key[len(SD_SCRIPTS_TABLE) + 1 :]
            raw_value = _toml_scalar(raw.strip())
            if isinstance(raw_value, str) and _DECIMAL_COMMA.match(raw_value):
                raw_value = float(raw_value.replace(",", "."))
            values.setdefault(SD_SCRIPTS_TABLE, {})[sub] = raw_value
            continue
        values[key] = raw
    return values, problems


def read_settings_file(path: Path) -> dict[str, Any]:
    """The raw TOML document of a settings file (decimal commas accepted)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"No settings file: {path}",
            [],
            "Run `kohya-orch prepare NAME --images DIR --dest DEST --model FILE` first.",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"Cannot read the settings file {path}: {exc}", []) from None
    text = "\n".join(_COMMA_LINE.sub(r"\1\2.\3\4", line) for line in text.split("\n"))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{path} is not valid TOML: {exc}",
            [],
            'Fix that line; text values need quotes, e.g. lr_scheduler = "cosine".',
        ) from None


def _collect(
    doc: Mapping[str, Any], source: str, *, from_cli: bool, problems: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validated (settings, raw sd-scripts keys) from one source; problems appended."""
    out: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for key, value in doc.items():
        if key == SD_SCRIPTS_TABLE:
            if not isinstance(value, Mapping):
                problems.append(f"{source}: {key} must be a table ([{SD_SCRIPTS_TABLE}])")
                continue
            for sub, sub_value in value.items():
                if isinstance(sub_value, Mapping):
                    problems.append(
                        f"{source}: [{SD_SCRIPTS_TABLE}] {sub} is a table; sd-scripts reads "
                        "only plain keys there"
                    )
                else:
                    raw[sub] = sub_value
            continue
        spec = SPEC_BY_KEY.get(key)
        if spec is None:
            problems.append(f"{source}: unknown setting {key!r}{_did_you_mean(key)}")
            continue
        coerced, error = _coerce(spec, value, from_cli=from_cli)
        if error is not None:
            problems.append(f"{source}: {key} = {_fmt(value)} {error}")
            continue
        out[key] = coerced
    return out, raw


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
    file_values, file_raw = _collect(doc, source, from_cli=False, problems=problems)
    set_doc, set_problems = parse_overrides(overrides)
    problems.extend(set_problems)
    set_values, set_raw = _collect(set_doc, "--set", from_cli=True, problems=problems)

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


def _derive(s: Settings, given: Mapping[str, Any]) -> None:
    """Fill in the derived values and explain each to the user in `s.notes`."""
    if "keep_tokens" not in given:
        s.keep_tokens = trigger_token_count(s.trigger)
        s.origins["keep_tokens"] = "derived"
        s.notes.append(
            f"keep_tokens = {s.keep_tokens}: the trigger {_fmt(s.trigger)} has "
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


# -- writing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitialSettings:
    """What `write_initial_settings` did: the file, whether it wrote it, and why not."""

    path: Path
    written: bool
    notes: list[str]


def initial_settings_text(**values: Any) -> str:
    """The commented settings file for a new project (values given are written as set)."""
    from kohya_orchestrator.settings_spec import PROFILE_KEYS, SECTION_TITLES

    profile = values.get("profile", DEFAULT_PROFILE)
    profile_defaults = profile_values(profile) if profile in PROFILES else {}
    raw = dict(values.pop(SD_SCRIPTS_TABLE, None) or {})
    lines = [
        "# kohya-orch settings for this training project.",
        "# Written once by `kohya-orch prepare`; yours to edit from now on (never overwritten).",
        "# `kohya-orch config DEST` renders config.toml from these; `--set key=value` on any",
        "# command overrides one for that run, e.g. --set epochs=10 --set learning_rate=0,0001",
        "# Decimal commas are fine (0,000025). Commented-out lines show the value used.",
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
            lines.append(f"# {spec.key} ={comment}")
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
                f"{key}: the settings file says {_fmt(doc[key])}, this command said "
                f"{_fmt(value)}; the file wins (edit it or use --set {key}=...)."
            )
    return notes
