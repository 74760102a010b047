"""Validation of user-given names that become parts of file names."""

from __future__ import annotations

import pytest

from kohya_orchestrator.dataset.names import fold_name, validate_file_prefix
from kohya_orchestrator.errors import InputError

HINT = "Use letters, digits, '_' or '-', for example yumoto_hakone."


@pytest.mark.parametrize(
    "good",
    ["yumoto_hakone", "a", "Yumoto Hakone", "湯本箱根", "café-2", "x.y", "名前_v2", "CONSOLE"],
)
def test_good_names_pass_unchanged(good: str) -> None:
    assert validate_file_prefix(good) == good


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (" lead", "it starts or ends with a space"),
        ("trail ", "it starts or ends with a space"),
        ("tab\t", "it starts or ends with a space; it contains control characters (U+0009)"),
        ("a\nb", "it contains control characters (U+000A)"),
        ("a\x7fb", "it contains control characters (U+007F)"),
        ("a/b", "it contains a path separator ('/')"),
        ("a\\b", "it contains a path separator ('\\\\')"),
        ("..", "it contains '..'"),
        ("a..b", "it contains '..'"),
        ("a:b", "it contains characters not allowed in file names on Windows or macOS (:)"),
        (
            'a<b>c"d|e?f*',
            'it contains characters not allowed in file names on Windows or macOS (< > " | ? *)',
        ),
        (".hidden", "it starts with '.', which hides the files"),
        ("dot.", "it ends with '.', which Windows drops"),
        ("CON", "'CON' is a reserved device name on Windows"),
        ("lpt1.x", "'lpt1' is a reserved device name on Windows"),
        ("x" * 201, "it is 201 bytes long (at most 200)"),
        ("é" * 101, "it is 202 bytes long (at most 200)"),
    ],
)
def test_bad_names_are_refused_with_every_reason(bad: str, reason: str) -> None:
    with pytest.raises(InputError) as info:
        validate_file_prefix(bad)
    assert info.value.message == f"Invalid prefix {bad!r}: {reason}."
    assert info.value.hint == HINT


def test_several_problems_reported_at_once() -> None:
    with pytest.raises(InputError) as info:
        validate_file_prefix(" ../a:b", what="trigger")
    assert info.value.message == (
        "Invalid trigger ' ../a:b': it starts or ends with a space; it contains a path "
        "separator ('/'); it contains '..'; it contains characters not allowed in file "
        "names on Windows or macOS (:)."
    )


def test_empty_name() -> None:
    with pytest.raises(InputError) as info:
        validate_file_prefix("", what="name")
    assert info.value.render() == f"The name is empty.\n  hint: {HINT}"


def test_fold_name_ignores_case_and_unicode_normalisation() -> None:
    assert fold_name("Caf\u00e9") == fold_name("cafe\u0301") == "caf\u00e9"
    assert fold_name("\u00c5ngstr\u00f6m") == fold_name("A\u030angstro\u0308m")
    assert fold_name("Stra\u00dfe") == fold_name("STRASSE")
    assert fold_name("a.png") != fold_name("a.jpg")
