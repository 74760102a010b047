"""Numbers as people write and read them."""

from __future__ import annotations

import pytest

from kohya_orchestrator.units import decimal_comma, human_size


def test_human_size() -> None:
    assert [human_size(n) for n in (512, 2300, 18 * 1024**2 + 400_000, 7 * 1024**3)] == [
        "512 B",
        "2.2 KiB",
        "18.4 MiB",
        "7.0 GiB",
    ]


@pytest.mark.parametrize(
    ("value", "number"),
    [("0,000025", 2.5e-05), (" 1,5 ", 1.5), ("-2,25", -2.25), ("768,768", 768.768)],
)
def test_decimal_comma(value: str, number: float) -> None:
    assert decimal_comma(value) == number


@pytest.mark.parametrize("value", ["0.5", "1,5,5", "a,b", "1e-4", 1.5, None, "1 , 5"])
def test_not_a_decimal_comma(value: object) -> None:
    assert decimal_comma(value) is None
