"""A kohya_ss GUI preset or saved config (JSON), or a TOML the GUI generated, as our settings.

`convert_gui(doc)` walks the file field by field: a field named on a setting (`gui=` or
the sd-scripts key it renders to, schema.py) becomes that setting by its kind; a field of
the GUI field table (gui_fields.py) by its own conversion; any other field with an
sd-scripts option of its name a raw sd-scripts key (unless it is off, empty or sd-scripts'
default); the rest is dropped, each with the reason. Paths that are not on this machine are
reported. The image folders of the GUI's `train_data_dir` (the parent of its
`<repeats>_<name>` folders) become our concepts. Pure but for looking at those paths.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.concepts import Concept
from kohya_orchestrator.config.gui_fields import FIELDS, Conversion, drop, empty, number
from kohya_orchestrator.config.parse import coerce_setting, fmt
from kohya_orchestrator.config.schema import SPECS
from kohya_orchestrator.config.spec import FLAG, Spec
from kohya_orchestrator.errors import SettingsError

SETTING = "setting"
RAW = "raw"
DROPPED = "dropped"
_PATHLIKE = re.compile(r"^(/|~|[A-Za-z]:[\\/]|\\\\)")
# GUI field -> setting, from the declarations: the GUI name first, then the sd-scripts key
# a setting renders to (a TOML the GUI generated holds those).
_BY_GUI = {s.gui: s for s in SPECS if s.gui}
_BY_ARG = {s.arg: s for s in SPECS if s.arg and s.render != FLAG}


@dataclass(frozen=True)
class Row:
    """One field of the file and what became of it."""

    field: str
    value: Any
    fate: str  # SETTING, RAW or DROPPED
    targets: dict[str, Any]  # setting (or sd_scripts.KEY) -> its value
    why: str
    warn: bool = False

    def line(self) -> str:
        """`lr_warmup = 5 -> warmup_ratio = 0.05 (5 % of the steps -> a ratio)`."""
        given = f"{self.field} = {_shown(self.value)}"
        if self.fate == DROPPED:
            return f"{given}: dropped, {self.why}"
        made = ", ".join(f"{k} = {_shown(v)}" for k, v in self.targets.items())
        return f"{given} -> {made}" + (f" ({self.why})" if self.why else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "value": self.value,
            "fate": self.fate,
            "targets": self.targets,
            "why": self.why,
            "warn": self.warn,
        }


@dataclass
class GuiImport:
    """The settings and raw keys a GUI file means, row by row."""

    source: str
    script: str
    rows: list[Row] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def document(self) -> dict[str, Any]:
        """The settings document (kohya-orch.toml's shape) the file means."""
        return {**self.settings, **({"sd_scripts": dict(self.raw)} if self.raw else {})}

    def drop_target(self, target: str, why: str) -> None:
        """Take back one imported setting or raw key (`sd_scripts.KEY`), saying why."""
        self.settings.pop(target, None)
        if target.startswith("sd_scripts."):
            self.raw.pop(target[len("sd_scripts.") :], None)
        for i, row in enumerate(self.rows):
            if target in row.targets:
                rest = {k: v for k, v in row.targets.items() if k != target}
                fate = row.fate if rest else DROPPED
                self.rows[i] = Row(row.field, row.value, fate, rest, why, True)


def _shown(value: Any) -> str:
    if isinstance(value, Concept):
        return fmt(value.to_dict())
    if isinstance(value, list) and value and isinstance(value[0], Concept):
        return fmt([c.to_dict() for c in value])
    return fmt(value) if value is not None else "none"


def read_gui_file(path: Path) -> dict[str, Any]:
    """A GUI preset or saved config (JSON), or a GUI-generated TOML (its tables flattened)."""
    from kohya_orchestrator.sdscripts.contract import flatten

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"Cannot read {path}: {exc}", []) from None
    if text.lstrip().startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(
                f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}",
                [],
                "Give a kohya_ss GUI preset or saved config (.json), or the TOML it generated.",
            ) from None
        if not isinstance(doc, dict):
            raise SettingsError(f"{path} is JSON but not a GUI preset (not an object).", [])
        return doc
    try:
        return dict(flatten(tomllib.loads(text)).values)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{path} is neither JSON nor valid TOML: {exc}",
            [],
            "Give a kohya_ss GUI preset or saved config (.json), or the TOML it generated.",
        ) from None


def script_of(doc: Mapping[str, Any]) -> str:
    """The training script the file is for: the GUI's sdxl switch, else SDXL."""
    return "train_network.py" if doc.get("sdxl") is False else "sdxl_train_network.py"


def convert_gui(doc: Mapping[str, Any], source: str = "the file") -> GuiImport:
    """Every field of a GUI file and what it becomes (see the module docstring)."""
    from kohya_orchestrator.sdscripts.contract import load_contract

    result = GuiImport(source, script_of(doc))
    options = load_contract(result.script).options
    for name, value in doc.items():
        conversion = _convert(name, value, doc, options)
        fate = SETTING if conversion.settings else RAW if conversion.raw else DROPPED
        targets = {**conversion.settings}
        targets |= {f"sd_scripts.{k}": v for k, v in conversion.raw.items()}
        result.rows.append(Row(name, value, fate, targets, conversion.why, conversion.warn))
        for key, setting_value in conversion.settings.items():
            result.settings.setdefault(key, setting_value)
        result.raw |= conversion.raw
    return result


def _convert(
    name: str, value: Any, doc: Mapping[str, Any], options: Mapping[str, Any]
) -> Conversion:
    if name in _PATHS:
        return _PATHS[name](value)
    if name in FIELDS:
        return FIELDS[name][1](value, doc)
    spec = _BY_GUI.get(name) or _BY_ARG.get(name)
    if spec is not None:
        return _setting(spec, value)
    option = options.get(name)
    if option is not None:
        return _raw(name, value, option)
    if empty(value):
        return drop("empty or off in the preset")
    standard = doc.get("LoRA_type", "Standard") == "Standard"
    return drop(
        "a GUI-only field with no sd-scripts option of this name (the GUI passes some to "
        "LyCORIS networks in network_args)",
        warn=not standard,
    )


def _setting(spec: Spec, value: Any) -> Conversion:
    if value is None or (isinstance(value, str) and not value.strip()):
        return drop("empty in the preset")
    if spec.kind == "bool" and value in (0, 1) and not isinstance(value, bool):
        value = bool(value)
    if spec.kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    text = isinstance(value, str)
    coerced, error = coerce_setting(spec, value.strip() if text else value, text=text)
    if error is not None:
        return drop(f"{fmt(value)} {error}", warn=True)
    return Conversion(settings={spec.key: coerced})


def _raw(name: str, value: Any, option: Any) -> Conversion:
    if empty(value):
        return drop("empty or off in the preset (sd-scripts' default)")
    if option.is_flag:
        if value is True or str(value).lower() in ("true", "1"):
            return Conversion(raw={name: True}, why="a raw sd-scripts key")
        return drop(f"{fmt(value)} is not true or false", warn=True)
    if option.is_list:
        items = value if isinstance(value, list) else str(value).replace('"', "").split()
        return Conversion(raw={name: items}, why="a raw sd-scripts key")
    if option.type in ("int", "float", "int_or_float"):
        got = number(value)
        if got is None:
            return drop(f"{fmt(value)} is not a number", warn=True)
        whole = option.type == "int" or (got.is_integer() and option.type != "float")
        value = int(got) if whole else got
    elif not isinstance(value, str):
        value = str(value)
    if value == option.default:
        return drop("the same as sd-scripts' default")
    if option.choices and value not in option.choices:
        shown = ", ".join(str(c) for c in option.choices if c is not None)
        return drop(f"{fmt(value)} is not one of sd-scripts' choices ({shown})", warn=True)
    if isinstance(value, str) and _PATHLIKE.match(value) and not _exists(value):
        return drop(f"{value} is not on this machine", warn=True)
    return Conversion(raw={name: value}, why="a raw sd-scripts key")


def _exists(path: str) -> bool:
    return os.path.exists(os.path.expanduser(path))


def _model(value: Any) -> Conversion:
    if empty(value):
        return drop("empty in the preset: give --model")
    if not str(value).endswith(".safetensors") or not _exists(str(value)):
        return drop(f"{value} is not on this machine: give --model FILE.safetensors", warn=True)
    return Conversion(settings={"model": str(value)}, why="")


def _folders(reg: bool) -> Callable[[Any], Conversion]:
    def convert(value: Any) -> Conversion:
        from kohya_orchestrator.sdscripts.concepts import list_images, used_concepts

        flag = "--reg" if reg else "--images"
        if empty(value):
            return drop(f"empty in the preset{'' if reg else ': give --images'}")
        folder = Path(os.path.expanduser(str(value)))
        if not folder.is_dir():
            return drop(f"{value} is not on this machine: give {flag} DIR[:REPEATS]", warn=True)
        used = [c for c in used_concepts(folder) if c.images]
        if not used:
            if not list_images(folder):
                return drop(f"{value} holds no <repeats>_<name> folders with images", warn=True)
            key = "reg" if reg else "images"
            return Conversion(settings={key: str(folder)}, why="a folder of images")
        # The folder with the most images is the main concept (img/<repeats>_<name>).
        used.sort(key=lambda c: -len(c.images))
        first, rest = used[0], used[1:]
        out: dict[str, Any] = {}
        if reg:
            out |= {"reg": str(first.path), "reg_repeats": first.repeats}
            if first.class_tokens:
                out["class_prompt"] = first.class_tokens
        else:
            out |= {"images": str(first.path), "repeats": first.repeats}
        extra = [Concept(str(c.path), c.repeats, c.class_tokens) for c in rest]
        if extra:
            out["reg_concepts" if reg else "concepts"] = extra
        return Conversion(settings=out, why=f"its {len(used)} concept folder(s)")

    return convert


_PATHS: dict[str, Callable[[Any], Conversion]] = {
    "pretrained_model_name_or_path": _model,
    "train_data_dir": _folders(reg=False),
    "reg_data_dir": _folders(reg=True),
}


def import_table() -> list[tuple[str, str, str]]:
    """The mapping table: (GUI field, our setting or what, the conversion), one row each."""
    rows = [(gui, spec.key, f"by kind ({spec.kind})") for gui, spec in _BY_GUI.items()]
    rows = [r for r in rows if r[0] not in FIELDS and r[0] not in _PATHS]
    rows += [(name, "", words) for name, (words, _) in FIELDS.items()]
    rows += [
        ("pretrained_model_name_or_path", "model", "a local .safetensors, else dropped"),
        ("train_data_dir", "images, repeats, concepts", "its <repeats>_<name> folders"),
        ("reg_data_dir", "reg, reg_repeats, class_prompt, reg_concepts", "likewise"),
    ]
    return sorted(rows)
