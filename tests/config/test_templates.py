"""Templates: TOML quoting, the search path, ls / cp, strict rendering, the shipped files."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import toml
from hypothesis import given
from hypothesis import strategies as st
from testpaths import TEMPLATES

from kohya_orchestrator.config.templates import (
    ENV_VAR,
    copy_template,
    find_template,
    list_templates,
    packaged_dir,
    prompt_filter,
    render,
)
from kohya_orchestrator.config.tomlquote import TomlValueError, toml_value
from kohya_orchestrator.errors import TemplateError

SHIPPED = [
    "sample_prompts.txt.j2",
    "sample_prompts_pony.txt.j2",
    "sd15_lora.toml.j2",
    "sdxl_lora.toml.j2",
]


@pytest.fixture(autouse=True)
def _no_env_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def _both(text: str) -> Any:
    a, b = tomllib.loads(text), toml.loads(text)
    assert a == b
    return a


QUOTEY = st.text(
    st.sampled_from(['"', "'", "\\", "\n", "#", "[", "]", ",", "=", "{", " ", "a", "é"])
)


@given(st.text() | QUOTEY)
def test_any_string_round_trips_through_both_parsers(value: str) -> None:
    try:
        literal = toml_value(value)
    except TomlValueError:
        # The one shape sd-scripts' parser cannot read back; refused, never mangled.
        assert value.startswith('""') or value == '"'
        return
    doc = _both(f"v = {literal}\nafter = 1\n")
    assert doc == {"v": value, "after": 1}


@given(
    st.floats(allow_nan=False)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
)
def test_numbers_round_trip(value: Any) -> None:
    parsed = _both(f"v = {toml_value(value)}")["v"]
    assert parsed == value and type(parsed) is type(value)


@given(
    st.lists(st.text(max_size=8) | QUOTEY, max_size=4),
    st.dictionaries(
        st.text(st.characters(categories=["L", "N"]) | st.sampled_from(" ._-"), min_size=1),
        st.integers(0, 9),
        max_size=3,
    ),
)
def test_lists_and_tables_round_trip_or_are_refused(
    items: list[str], table: dict[str, int]
) -> None:
    try:
        literal = toml_value(items)
    except TomlValueError as exc:
        # Either refusal: a list item toml 0.10.2 misreads, or a string it misreads.
        assert "sd-scripts' TOML parser (toml 0.10.2) would misread" in str(exc)
        return
    assert _both(f"v = {literal}\nt = {toml_value(table)}") == {"v": items, "t": table}


def test_everyday_lists() -> None:
    value = ["conv_dim=4", "conv_alpha=1", "a,b", 'say "hi"', "path\\x"]
    assert _both(f"v = {toml_value(value)}") == {"v": value}
    assert _both(f"v = {toml_value([2.5e-5, 1e-4])}") == {"v": [2.5e-5, 1e-4]}


def test_nan_and_values_toml_cannot_hold() -> None:
    text = f"v = {toml_value(float('nan'))}"
    assert math.isnan(tomllib.loads(text)["v"]) and math.isnan(toml.loads(text)["v"])
    with pytest.raises(TomlValueError, match="TOML has no null value"):
        toml_value(None)
    with pytest.raises(TomlValueError, match="mixed-type array"):
        toml_value([1, "a"])
    with pytest.raises(TomlValueError, match="cannot be written so that sd-scripts"):
        toml_value({"a=b": 1})
    with pytest.raises(TomlValueError, match="lone surrogate"):
        toml_value("\ud800")


def test_packaged_templates_are_the_repository_folder() -> None:
    assert packaged_dir() == TEMPLATES
    assert [t.name for t in list_templates()] == SHIPPED
    assert {t.layer for t in list_templates()} == {"packaged"}


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    option, env, dest = tmp_path / "opt", tmp_path / "env", tmp_path / "proj"
    for folder in (option, env, dest / "templates"):
        folder.mkdir(parents=True)
        (folder / "sdxl_lora.toml.j2").write_text(f"# from {folder.name}\n")
    monkeypatch.setenv(ENV_VAR, str(env))
    assert find_template("sdxl_lora.toml.j2", dest, option).layer == "--templates-dir"
    assert find_template("sdxl_lora.toml.j2", dest).layer == "$KOHYA_ORCH_TEMPLATES"
    monkeypatch.delenv(ENV_VAR)
    assert find_template("sdxl_lora.toml.j2", dest).layer == "project"
    assert find_template("sdxl_lora.toml.j2").layer == "packaged"
    rows = [(t.name, t.layer, t.active) for t in list_templates(dest, option)]
    assert rows == [
        ("sdxl_lora.toml.j2", "--templates-dir", True),
        ("sdxl_lora.toml.j2", "project", False),
        ("sample_prompts.txt.j2", "packaged", True),
        ("sample_prompts_pony.txt.j2", "packaged", True),
        ("sd15_lora.toml.j2", "packaged", True),
        ("sdxl_lora.toml.j2", "packaged", False),
    ]
    assert render("sdxl_lora.toml.j2", {}, dest=dest).text == "# from templates\n"


def test_missing_layers_and_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TemplateError) as err:
        list_templates(None, tmp_path / "nope")
    assert err.value.render() == (
        f"Templates folder not found: {tmp_path / 'nope'}\n"
        "  hint: Give an existing folder to --templates-dir."
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone"))
    with pytest.raises(TemplateError) as err:
        list_templates()
    assert err.value.message == (
        f"$KOHYA_ORCH_TEMPLATES names a folder that does not exist: {tmp_path / 'gone'}"
    )
    monkeypatch.delenv(ENV_VAR)
    with pytest.raises(TemplateError) as err:
        find_template("sdxl.toml.j2")
    assert err.value.hint == (
        "Available: sample_prompts.txt.j2, sample_prompts_pony.txt.j2, sd15_lora.toml.j2, "
        "sdxl_lora.toml.j2; "
        "see `kohya-orch templates ls`."
    )


def test_copy_into_a_project_a_folder_and_a_file(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "kohya-orch.toml").write_text("")
    shipped = (packaged_dir() / "sdxl_lora.toml.j2").read_bytes()
    target = copy_template("sdxl_lora.toml.j2", project)
    assert target == project / "templates" / "sdxl_lora.toml.j2"
    assert target.read_bytes() == shipped
    assert find_template("sdxl_lora.toml.j2", project).layer == "project"
    assert copy_template("sd15_lora.toml.j2", tmp_path) == tmp_path / "sd15_lora.toml.j2"
    assert copy_template("sd15_lora.toml.j2", tmp_path / "mine.j2") == tmp_path / "mine.j2"


def test_copy_never_overwrites_without_force(tmp_path: Path) -> None:
    target = tmp_path / "sdxl_lora.toml.j2"
    target.write_text("# my edits\n")
    with pytest.raises(TemplateError) as err:
        copy_template("sdxl_lora.toml.j2", tmp_path)
    assert err.value.render() == (
        f"{target} already exists; not overwritten.\n"
        "  hint: Use --force to replace it with a fresh copy."
    )
    assert target.read_text() == "# my edits\n"
    copy_template("sdxl_lora.toml.j2", tmp_path, force=True)
    assert target.read_bytes() == (packaged_dir() / "sdxl_lora.toml.j2").read_bytes()


def test_strict_undefined_and_syntax_errors(tmp_path: Path) -> None:
    (tmp_path / "a.toml.j2").write_text("x = {{ args.nope | toml }}\n")
    (tmp_path / "b.toml.j2").write_text("x = {{ 1 \n")
    (tmp_path / "c.toml.j2").write_text("x = {{ none_value | toml }}\n")
    with pytest.raises(TemplateError) as err:
        render("a.toml.j2", {"args": {}}, templates_dir=tmp_path)
    assert err.value.message == f"{tmp_path / 'a.toml.j2'}: 'dict object' has no attribute 'nope'"
    with pytest.raises(TemplateError) as err:
        render("b.toml.j2", {}, templates_dir=tmp_path)
    assert err.value.message.startswith(f"{tmp_path / 'b.toml.j2'}, line ")
    with pytest.raises(TemplateError) as err:
        render("c.toml.j2", {"none_value": None}, templates_dir=tmp_path)
    assert err.value.message == (
        f"{tmp_path / 'c.toml.j2'}: Cannot write this value into TOML: TOML has no null value "
        "(None)"
    )


@pytest.mark.parametrize("value", ["a\nb", "x --n evil", "--w 9", "tab\tin", "d 5 girl", "N bad"])
def test_prompt_filter_refuses_what_would_add_prompts_or_options(value: str) -> None:
    with pytest.raises(TemplateError):
        prompt_filter(value)


def test_prompt_filter_passes_plain_text_and_numbers() -> None:
    assert (
        prompt_filter("yumoto_hakone, glasses (smile:1.2)") == "yumoto_hakone, glasses (smile:1.2)"
    )
    assert (prompt_filter(512), prompt_filter(7.5)) == ("512", "7.5")
    assert prompt_filter("n00b, dog") == "n00b, dog"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_templates_explain_themselves(name: str) -> None:
    text = (packaged_dir() / name).read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("# ")]
    assert lines[0].startswith("# ") and "kohya-orch config DEST" in text
    assert "kohya-orch templates cp " + name in text
    assert "--set" in text
