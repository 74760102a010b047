"""Checks for user-given names (prefix, LoRA name, trigger) that become parts of file names."""

from __future__ import annotations

import unicodedata

from kohya_orchestrator.errors import InputError

# Illegal in Windows file names; ':' is also the path separator of the macOS Finder.
_ILLEGAL_CHARS = '<>:"|?*'
_SEPARATORS = "/\\"
# Windows device names, reserved with any extension (CON.txt is CON too).
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
# Leaves room for `_<number>`, the longest sidecar suffix and a temp prefix within the
# 255-byte file-name limit of APFS, ext4 and NTFS.
MAX_NAME_BYTES = 200


def name_problems(text: str) -> list[str]:
    """Every reason `text` cannot start a file name on macOS, Windows and Linux."""
    problems: list[str] = []
    if text[:1].isspace() or text[-1:].isspace():
        problems.append("it starts or ends with a space")
    controls = sorted({c for c in text if unicodedata.category(c) == "Cc"})
    if controls:
        shown = ", ".join(f"U+{ord(c):04X}" for c in controls)
        problems.append(f"it contains control characters ({shown})")
    seps = [c for c in _SEPARATORS if c in text]
    if seps:
        problems.append("it contains a path separator (" + ", ".join(map(repr, seps)) + ")")
    if ".." in text:
        problems.append("it contains '..'")
    illegal = [c for c in _ILLEGAL_CHARS if c in text]
    if illegal:
        problems.append(
            "it contains characters not allowed in file names on Windows or macOS ("
            + " ".join(illegal)
            + ")"
        )
    if text.startswith(".") and ".." not in text[:2]:
        problems.append("it starts with '.', which hides the files")
    if text.endswith(".") and not text.endswith(".."):
        problems.append("it ends with '.', which Windows drops")
    if text.split(".")[0].strip().upper() in _RESERVED:
        problems.append(f"{text.split('.')[0]!r} is a reserved device name on Windows")
    size = len(text.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        problems.append(f"it is {size} bytes long (at most {MAX_NAME_BYTES})")
    return problems


def validate_file_prefix(text: str, what: str = "prefix") -> str:
    """Return `text` if it can start a file name everywhere, else raise InputError.

    `what` names the value in the message ("prefix", "trigger", "name").
    """
    hint = "Use letters, digits, '_' or '-', for example yumoto_hakone."
    if text == "":
        raise InputError(f"The {what} is empty.", hint)
    problems = name_problems(text)
    if problems:
        raise InputError(f"Invalid {what} {text!r}: " + "; ".join(problems) + ".", hint)
    return text


def fold_name(name: str) -> str:
    """`name` as a case- and normalisation-insensitive file system (macOS, Windows) sees it.

    NFD first so that casefold sees base letters and accents apart, NFC after so that
    `é` typed as one code point or as `e` + accent (macOS's NFD names) fold alike.
    """
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())
