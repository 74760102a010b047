"""TOML literals for Python values: the quoting every rendered value passes through.

Kept free of Jinja so that the settings writer can use it without importing the template
engine; `templates.py` registers `toml_value` as the `toml` filter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SHORT_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


class TomlValueError(ValueError):
    """A value that TOML cannot represent (None, a lone surrogate, an unknown type)."""


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise TomlValueError(f"{text!r} contains a lone surrogate (U+{code:04X})")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_key(key: str) -> str:
    """A key, bare when TOML allows it, quoted otherwise."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(value: Any) -> str:
    """The TOML literal for `value` (bool, int, float, str, path, list, mapping)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, PurePath):
        return toml_string(str(value))
    if isinstance(value, list | tuple):
        # sd-scripts reads its config with `toml` 0.10.2, which rejects mixed-type arrays.
        kinds = {_array_kind(v) for v in value}
        if len(kinds) > 1:
            raise TomlValueError(f"mixed-type array {list(value)!r}: sd-scripts' parser rejects it")
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + items + "}" if not items else "{ " + items + " }"
    if value is None:
        raise TomlValueError("TOML has no null value (None)")
    raise TomlValueError(f"cannot write a {type(value).__name__} as TOML: {value!r}")


def _array_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, PurePath):
        return "str"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "table"
    return type(value).__name__
