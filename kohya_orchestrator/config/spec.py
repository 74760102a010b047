"""How one setting is declared: the `Spec` every part of the house reads, and `setting()`.

schema.py declares each setting once with `setting(...)` on a field of `Settings`; the `Spec`
of each is derived from that declaration.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SECTION_TITLES = {
    "project": "Project",
    "dataset": "Dataset",
    "training": "Training",
    "machine": "Machine: set by the profile unless you uncomment a line",
    "sampling": "Sample images during training",
}
# How a setting becomes sd-scripts arguments (`Spec.render`); see render.build_args.
AS_IS = "as is"  # {arg: value}
FLAG = "flag"  # {value: true}: the value names the switch (attention = "sdpa" -> sdpa = true)
WARMUP = "warmup"  # a ratio below 1 of the total steps; 0 when off
CLIP_SKIP = "clip skip"  # only for a trainer that reads it (SD 1.x/2.x)
SAMPLING = "sampling"  # only when sample images are on
TEXT_ENCODER_LR = "text encoder lr"  # a number, or a list where the commit wants one


@dataclass(frozen=True)
class Spec:
    """One setting, as declared on its `Settings` field."""

    key: str
    kind: str  # str, int, float, bool, resolution
    default: Any  # None: required, optional, derived from others, or set by the profile
    comment: str
    section: str
    choices: tuple[str, ...] | None = None
    # A value outside `choices` that is still valid (lr_scheduler "adafactor:1e-3").
    accepts: Callable[[str], bool] | None = None
    required: bool = False
    optional: bool = False  # may stay unset (derived from others, or not used)
    minimum: float | None = None
    profile: bool = False  # the machine profile sets it (defaults < profile < file < --set)
    arg: str | None = None  # the sd-scripts key it renders to (None: it renders to none)
    render: str = AS_IS
    gui: str | None = None  # the kohya_ss GUI's field for it
    aliases: tuple[str, ...] = ()  # other names people write for it
    example: Any = None  # shown commented out in a new settings file when unset

    def allows(self, value: str) -> bool:
        """Whether a text value is one of the choices (or otherwise accepted)."""
        if self.choices is None or value in self.choices:
            return True
        return self.accepts is not None and self.accepts(value)


def setting(
    section: str,
    comment: str,
    default: Any = None,
    *,
    kind: str | None = None,
    arg: str | None = "",
    gui: str | None = "",
    **options: Any,
) -> Any:
    """Declare one setting on a `Settings` field. `arg` (the sd-scripts key) and `gui` (the
    kohya_ss GUI's field) default to "" for "the same name as the setting"; None for none."""
    return field(
        metadata={
            "spec": {
                "section": section,
                "comment": comment,
                "default": default,
                "kind": kind,
                "arg": arg,
                "gui": gui,
                **options,
            }
        }
    )


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


_KINDS = {"str": "str", "int": "int", "float": "float", "bool": "bool"}


def spec_of(f: dataclasses.Field[Any]) -> Spec:
    """The Spec of a field declared with `setting()` (its kind from the annotation)."""
    declared = dict(f.metadata["spec"])
    kind = declared.pop("kind") or _KINDS[str(f.type).split(" |")[0]]
    arg, gui = declared.pop("arg"), declared.pop("gui")
    return Spec(
        key=f.name,
        kind=kind,
        arg=f.name if arg == "" else arg,
        gui=f.name if gui == "" else gui,
        **declared,
    )


def aliases_of(specs: Iterable[Spec]) -> dict[str, str]:
    """Other names of each setting (its GUI field, its sd-scripts key, its aliases, and the
    switches a FLAG setting names) -> the setting, where they are not settings themselves."""
    specs = list(specs)
    keys = {s.key for s in specs}
    names: dict[str, str] = {}
    for spec in specs:
        for name in (spec.gui, spec.arg, *spec.aliases):
            if name and name != spec.key and name not in keys:
                names.setdefault(name, spec.key)
        if spec.render == FLAG:
            for choice in spec.choices or ():
                names.setdefault(choice, spec.key)
    return names


def settings_for_args(specs: Iterable[Spec]) -> dict[str, str]:
    """sd-scripts key -> the differently named setting it is rendered from."""
    found: dict[str, str] = {}
    for spec in specs:
        if spec.render == FLAG:
            found |= {choice: spec.key for choice in spec.choices or ()}
        elif spec.arg and spec.arg != spec.key:
            found[spec.arg] = spec.key
    return found
