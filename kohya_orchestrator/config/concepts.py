"""Several concepts: image folders each with its own repeats and class tokens (the GUI's concepts).

A project's first image folder is `images` / `repeats` (its folder is `img/<repeats>_<name>`);
more folders are `concepts` in kohya-orch.toml, a list of inline tables, each becoming
`img/<repeats>_<class_tokens>`. Regularisation folders likewise: `reg` / `reg_repeats` /
`class_prompt`, then `reg_concepts`. On the command line each is `DIR[:REPEATS[:CLASS]]`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CONCEPT_KEYS = ("images", "repeats", "class_tokens")
# DIR, then optionally `:REPEATS` and `:CLASS` (class tokens never hold ':', an illegal file
# name character; a folder may, so the folder is the shortest text the rest leaves).
_ARG = re.compile(r"^(?P<dir>.+?)(?::(?P<repeats>\d+)(?::(?P<cls>[^:]*))?)?$")


@dataclass(frozen=True)
class Concept:
    """One image folder: where it is, its repeats, and the class tokens of its folder name
    ("" = the project's name, or for regularisation the class prompt)."""

    images: str
    repeats: int
    class_tokens: str = ""

    def folder_name(self, default_tokens: str) -> str:
        """`<repeats>_<class tokens>`: sd-scripts reads the repeats from the folder name."""
        return f"{self.repeats}_{self.class_tokens or default_tokens}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"images": self.images, "repeats": self.repeats}
        if self.class_tokens:
            data["class_tokens"] = self.class_tokens
        return data


def parse_concept_arg(text: str, default_repeats: int) -> Concept:
    """`DIR[:REPEATS[:CLASS]]` -> Concept; a folder that exists under the whole text wins
    (a folder named `set:2`). ValueError with the fix when the text is not that shape."""
    if os.path.isdir(os.path.expanduser(text)):
        return Concept(text, default_repeats)
    match = _ARG.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not DIR[:REPEATS[:CLASS]], e.g. ~/hakone_casual:3:hakone")
    repeats = int(match["repeats"]) if match["repeats"] else default_repeats
    if repeats < 1:
        raise ValueError(f"{text!r}: repeats must be at least 1")
    return Concept(match["dir"], repeats, (match["cls"] or "").strip())


def coerce_concepts(value: Any) -> tuple[list[Concept] | None, str | None]:
    """A `concepts` value from kohya-orch.toml -> (concepts, None) or (None, what is wrong)."""
    shape = 'must be a list like [{ images = "/path", repeats = 3, class_tokens = "hakone" }]'
    if not isinstance(value, list):
        return None, shape
    out = []
    for i, item in enumerate(value, 1):
        if isinstance(item, Concept):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            return None, shape
        unknown = sorted(set(item) - set(CONCEPT_KEYS))
        if unknown:
            return None, f"entry {i} has unknown key(s) {', '.join(unknown)} ({shape})"
        images, repeats = item.get("images"), item.get("repeats", 1)
        tokens = item.get("class_tokens", "")
        if not isinstance(images, str) or not images:
            return None, f'entry {i} needs images = "/path/to/folder"'
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            return None, f"entry {i}: repeats must be a whole number of at least 1"
        if not isinstance(tokens, str):
            return None, f"entry {i}: class_tokens must be text in quotes"
        out.append(Concept(images, repeats, tokens))
    return out, None


def concepts_toml(concepts: list[Concept]) -> str:
    """The TOML of a `concepts` value: a multi-line array, one inline table per line, so
    lines appended after it still land at the top level of the file."""
    from kohya_orchestrator.config.tomlquote import toml_value

    if not concepts:
        return "[]"
    rows = [f"  {toml_value(c.to_dict())}," for c in concepts]
    return "[\n" + "\n".join(rows) + "\n]"
