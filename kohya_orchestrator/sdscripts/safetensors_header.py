"""Reading a .safetensors file's header (tensor names, shapes, metadata) without its data.

The format: 8 bytes little-endian header length N, then N bytes of JSON, then the tensor
data. Only those first 8 + N bytes are read, so a 7 GB checkpoint is inspected instantly.
"""

from __future__ import annotations

import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import ModelError
from kohya_orchestrator.fsutil import NotRegularFileError, open_regular

# A real header is at most a few MB (tens of thousands of tensor names); refuse absurd sizes
# (100 MB is also the safetensors library's own limit).
MAX_HEADER_BYTES = 100 * 1024 * 1024
# A header is an object of objects holding lists of numbers: 3 levels deep. Metadata values
# are strings, some of them JSON again (ss_tag_frequency, 3 levels). Far more is hostile,
# and Python's parser would end in a RecursionError.
MAX_JSON_DEPTH = 64
# Shapes and offsets fit in 20 digits (2**64); a 5,000-digit number is hostile (and past
# Python's int-from-text limit of 4,300 digits, a ValueError).
MAX_NUMBER_DIGITS = 40

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_PAIR = re.compile(rb"\[\]|\{\}")


class JsonLimitError(ValueError):
    """JSON past the limits on nesting depth or number length."""


def _check_depth(raw: bytes) -> None:
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        shorter = _PAIR.sub(b"", brackets)
        if shorter == brackets:
            return  # unbalanced: the parser reports where
        brackets = shorter
    if brackets:
        raise JsonLimitError(f"nested more than {MAX_JSON_DEPTH} levels deep")


def _number(text: str) -> int | float:
    digits = sum(c.isdigit() for c in text)
    if digits > MAX_NUMBER_DIGITS:
        raise JsonLimitError(f"a number with {digits:,} digits (at most {MAX_NUMBER_DIGITS})")
    return float(text) if any(c in text for c in ".eE") else int(text)


def loads_bounded(raw: bytes | str) -> Any:
    """json.loads within MAX_JSON_DEPTH and MAX_NUMBER_DIGITS: JsonLimitError past them,
    json.JSONDecodeError (a ValueError too) for text that is not JSON."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    _check_depth(data)
    try:
        return json.loads(raw, parse_int=_number, parse_float=_number)
    except RecursionError:  # only if the depth check was fooled
        raise JsonLimitError(f"nested more than {MAX_JSON_DEPTH} levels deep") from None


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in the header."""

    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]


@dataclass(frozen=True)
class SafetensorsHeader:
    """The parsed header: tensors by name, the `__metadata__` strings, and the sizes."""

    path: Path
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    header_size: int
    file_size: int

    @property
    def keys(self) -> list[str]:
        return list(self.tensors)


def read_header(path: Path) -> SafetensorsHeader:
    """Parse the header of `path`; raise ModelError saying what is wrong if it is not one."""
    hint = "Give a .safetensors file (a checkpoint or a LoRA), not a .ckpt or a folder."
    try:
        with os.fdopen(open_regular(path), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{path}: not a safetensors file (only {len(head)} bytes).", hint)
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise ModelError(
                    f"{path}: not a safetensors file (header length {n} does not fit "
                    f"the file's {size} bytes).",
                    hint,
                )
            raw = fh.read(n)
    except FileNotFoundError:
        raise ModelError(f"Model file not found: {path}", "Check the path.") from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a model file.", hint) from None
    except PermissionError:
        raise ModelError(f"{path}: permission denied.", "Make the file readable.") from None
    except NotRegularFileError as exc:
        raise ModelError(f"{path}: {exc.strerror}.", hint) from None
    try:
        doc = loads_bounded(raw.decode("utf-8"))
    except JsonLimitError as exc:
        raise ModelError(f"{path}: not a safetensors file (its header is {exc}).", hint) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"{path}: not a safetensors file (header is not JSON: {exc}).", hint
        ) from None
    if not isinstance(doc, dict):
        raise ModelError(f"{path}: not a safetensors file (header is not a JSON object).", hint)
    return _parse(path, doc, n, size)


def _parse(path: Path, doc: dict[str, Any], header_size: int, file_size: int) -> SafetensorsHeader:
    meta_raw = doc.pop("__metadata__", None) or {}
    if not isinstance(meta_raw, dict):
        raise ModelError(f"{path}: malformed safetensors header (__metadata__ is not an object).")
    metadata = {str(k): str(v) for k, v in meta_raw.items()}
    tensors: dict[str, TensorInfo] = {}
    for name, info in doc.items():
        try:
            tensors[name] = TensorInfo(
                dtype=str(info["dtype"]),
                shape=tuple(int(d) for d in info["shape"]),
                data_offsets=(int(info["data_offsets"][0]), int(info["data_offsets"][1])),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            raise ModelError(
                f"{path}: malformed safetensors header (tensor {name!r} has no valid "
                "dtype/shape/data_offsets)."
            ) from None
    return SafetensorsHeader(path, tensors, metadata, header_size, file_size)


def write_header_only(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> None:
    """Write a file with a valid header but no tensor data (for tests and demo stand-ins).

    `tensors` maps names to {"dtype", "shape"}; offsets are filled in as if the data
    followed. The file is truncated to the header, so readers that only need the header
    (this module) work; loaders that read data do not. `path` is written atomically.
    """
    from kohya_orchestrator.fsutil import atomic_write_bytes

    doc: dict[str, Any] = {"__metadata__": dict(metadata)}
    offset = 0
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}
    for name, info in tensors.items():
        count = 1
        for d in info["shape"]:
            count *= int(d)
        nbytes = count * sizes.get(str(info["dtype"]), 4)
        doc[name] = {
            "dtype": info["dtype"],
            "shape": list(info["shape"]),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    atomic_write_bytes(path, struct.pack("<Q", len(raw)) + raw)
