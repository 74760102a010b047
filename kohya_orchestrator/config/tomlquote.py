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
    """A TOML basic string: quotes, backslashes and every control character escaped.

    `toml` 0.10.2 (sd-scripts' parser) misreads a basic string that is `"` alone or starts
    with `""` (it returns ""), so those are written as a literal string when they can be,
    and refused when they cannot (they also hold `'` or a control character).
    """
    if text == '"' or text.startswith('""'):
        if "'" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise TomlValueError(
                f"{text!r} starts with a double quote and holds a quote or control character: "
                "sd-scripts' TOML parser (toml 0.10.2) would misread it"
            )
        return f"'{text}'"
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
    """A key, bare when TOML allows it, quoted when both parsers read the quoted form alike.

    `toml` 0.10.2 (sd-scripts' parser) neither unescapes quoted keys nor accepts `,` or `=`
    in them, so only letters, digits, spaces, dots, `_` and `-` are written quoted.
    """
    if _BARE_KEY.match(key):
        return key
    if key and all(c.isalnum() or c in " ._-" for c in key):
        return toml_string(key)
    raise TomlValueError(f"key {key!r} cannot be written so that sd-scripts' parser reads it")


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
        return _checked(toml_string(value), value)
    if isinstance(value, PurePath):
        return _checked(toml_string(str(value)), str(value))
    if isinstance(value, list | tuple):
        # sd-scripts reads its config with `toml` 0.10.2, which rejects mixed-type arrays.
        kinds = {_array_kind(v) for v in value}
        if len(kinds) > 1:
            raise TomlValueError(f"mixed-type array {list(value)!r}: sd-scripts' parser rejects it")
        text = "[" + ", ".join(toml_value(v) for v in value) + "]"
        return _checked(text, list(value))
    if isinstance(value, Mapping):
        items = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        text = "{" + items + "}" if not items else "{ " + items + " }"
        return _checked(text, dict(value))
    if value is None:
        raise TomlValueError("TOML has no null value (None)")
    raise TomlValueError(f"cannot write a {type(value).__name__} as TOML: {value!r}")


def _checked(text: str, value: Any) -> str:
    """`text` if sd-scripts' parser (`toml` 0.10.2) reads it back as `value`, else refuse.

    That parser has quirks (a string array item starting with `,`, a string starting with
    `""`) that no quoting avoids; refusing beats a config that silently says something else.
    """
    import toml

    try:
        back = toml.loads(f"v = {text}")["v"]
    except (toml.TomlDecodeError, IndexError, ValueError):
        back = _UNREADABLE
    if not _same(back, value):
        raise TomlValueError(
            f"{value!r}: sd-scripts' TOML parser (toml 0.10.2) would misread this value"
        )
    return text


_UNREADABLE = object()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and bool(a == b)


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
