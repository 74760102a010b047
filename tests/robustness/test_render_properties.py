"""Property tests of rendering: any text in any string setting reaches config.toml exactly.

For each free-text setting (name, trigger, caption_extension, optimizer, images,
class_prompt), each raw `[sd_scripts]` string value and key, the project folder's own path
and the checkpoint's file name, hypothesis writes the text into kohya-orch.toml the way
the settings writer quotes it (`tomlquote.toml_value`) and renders the config with
`config.build_config`. Then either:

- the rendered TOML parses with both `tomllib` and `toml` (sd-scripts' parser) to the same
  document, the setting's own key holds exactly the text, and every other key is what it
  is with a plain value (nothing added, nothing changed; the one derived key a setting
  feeds, `keep_tokens` from the trigger's token count, is allowed to follow), and the
  sample prompts (sampling on) start every prompt line with the trigger; or
- the text is refused cleanly, and only for a documented reason:
  * `TomlValueError` from the quoting itself: a text that starts with a double quote
    (`"` alone or `""...`) and also holds `'` or a control character. toml 0.10.2 misreads
    `"` and `""...` as basic strings, and a literal string cannot hold `'` or control
    characters, so no spelling reaches sd-scripts intact.
  * `SettingsError`: the settings reject the value (a caption extension that is not
    `.something`, a name or trigger that cannot be one, ...).
  * `TemplateError`: toml 0.10.2 would read the rendered value differently (for example
    a string array item starting with `,`), or a prompt would break the prompts file
    (line breaks, ` --`).

`make test` runs a few dozen examples per property; the `slow` variants run many more.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import toml
from faultkit import checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kohya_orchestrator.config.settings_file import write_initial_settings
from kohya_orchestrator.config.tomlquote import TomlValueError, toml_key, toml_value
from kohya_orchestrator.errors import SettingsError, TemplateError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.project.render import build_config
from kohya_orchestrator.sdscripts.contract import flatten_like_sd_scripts

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that break naive quoting, mixed with everything else Unicode has.
NASTY = [*list("\"'\\\n\r\t[]{}=#,. -"), "\x00", "\x1b", "\x7f", "\u2028", "\ufeff", "é", "🎉"]
TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from([*NASTY, "a", "b", "x"]), max_size=12),
    st.sampled_from(['"', '""', "'", "''", "\"'", "\\", "\n", 'x"\n[evil]', '"""', "'''"]),
)

# setting -> (config key that holds it, derived keys allowed to follow it)
TEXT_SETTINGS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "name": ("output_name", ()),
    "trigger": (None, ("keep_tokens",)),
    "caption_extension": ("caption_extension", ()),
    "optimizer": ("optimizer_type", ()),
    "images": (None, ()),
    "class_prompt": (None, ()),
}

_COUNTS: dict[str, int] = {}


def _count(what: str) -> None:
    _COUNTS[what] = _COUNTS.get(what, 0) + 1


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("render")


def _project(root: Path, dest_name: str = "proj", model_name: str = "m.safetensors") -> Path:
    """A project folder with a settings file, a checkpoint and an img/ folder."""
    dest = root / dest_name
    model = root / model_name
    if not dest.exists():
        dest.mkdir()
        (dest / "img" / "7_hero").mkdir(parents=True)
        checkpoint(model)
        write_initial_settings(
            Layout(dest), name="hero", trigger="hero", images=root, model=model, repeats=7
        )
    return dest


def _settings_with(base: str, line: str, key: str) -> str:
    """The settings text with `key = ...` replaced (or, if absent, added) by `line`."""
    pattern = re.compile(rf"^#? ?{re.escape(key)} = .*$", re.M)
    if pattern.search(base):
        return pattern.sub(lambda _m: line, base, count=1)
    head, sep, tail = base.partition("\n[sd_scripts]")
    return f"{head.rstrip()}\n{line}\n{sep}{tail}"


_BASELINES: dict[tuple[Path, bool], dict[str, Any]] = {}


def _baseline(dest: Path, sampling: bool) -> dict[str, Any]:
    key = (dest, sampling)
    if key not in _BASELINES:
        _BASELINES[key] = flatten_like_sd_scripts(
            build_config(Layout.at(dest), _overrides(sampling)).values
        )
    return _BASELINES[key]


def _overrides(sampling: bool) -> tuple[str, ...]:
    return ("sample_every_n_epochs=1",) if sampling else ()


def _quoting_refusal_is_documented(text: str) -> bool:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return True
    starts = text == '"' or text.startswith('""')
    return starts and ("'" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text))


def _render(dest: Path, edit: Callable[[str], str], sampling: bool) -> tuple[Any, str] | None:
    """Write the edited settings, render; None when refused cleanly (counted)."""
    path = dest / "kohya-orch.toml"
    base = path.read_text(encoding="utf-8")
    try:
        path.write_text(edit(base), encoding="utf-8")
        try:
            rendered = build_config(Layout.at(dest), _overrides(sampling))
        except (SettingsError, TemplateError) as exc:
            _count(f"refused: {type(exc).__name__}")
            return None
        return rendered, rendered.text
    finally:
        path.write_text(base, encoding="utf-8")


def _check_rendered(
    rendered: Any, text: str, baseline: dict[str, Any], expect: dict[str, Any], allowed: set[str]
) -> None:
    by_tomllib = tomllib.loads(text)
    by_toml = toml.loads(text)
    assert by_tomllib == by_toml == rendered.values
    flat = flatten_like_sd_scripts(by_toml)
    for key, value in expect.items():
        assert flat.get(key) == value and type(flat.get(key)) is type(value), key
    changed = {k for k in set(flat) | set(baseline) if flat.get(k) != baseline.get(k)}
    assert changed <= set(expect) | allowed, sorted(changed - set(expect) - allowed)
    _count("rendered exactly")


def _setting_property(workspace: Path, key: str, text: str, sampling: bool) -> None:
    dest = _project(workspace)
    target, allowed = TEXT_SETTINGS[key]
    try:
        literal = toml_value(text)
    except TomlValueError:
        assert _quoting_refusal_is_documented(text), repr(text)
        _count("refused: quoting")
        return
    out = _render(dest, lambda base: _settings_with(base, f"{key} = {literal}", key), sampling)
    if out is None:
        return
    rendered, config_text = out
    expect = {target: text} if target else {}
    _check_rendered(rendered, config_text, _baseline(dest, sampling), expect, set(allowed))
    if sampling and key == "trigger":
        # Read the way sd-scripts reads the file: text-mode lines, blank and "#" lines skipped.
        prompts = [
            line
            for line in (rendered.sample_prompts or "").split("\n")
            if line.strip() and line[0] != "#"
        ]
        assert len(prompts) == 3
        assert all(line.startswith(f"{rendered.settings.trigger}, ") for line in prompts)


@FAST
@given(key=st.sampled_from(sorted(TEXT_SETTINGS)), text=TEXT, sampling=st.booleans())
def test_any_text_in_a_setting(workspace: Path, key: str, text: str, sampling: bool) -> None:
    _setting_property(workspace, key, text, sampling)


@pytest.mark.slow
@SLOW
@given(key=st.sampled_from(sorted(TEXT_SETTINGS)), text=TEXT, sampling=st.booleans())
def test_any_text_in_a_setting_many(workspace: Path, key: str, text: str, sampling: bool) -> None:
    _setting_property(workspace, key, text, sampling)


RAW_KEYS = st.one_of(
    st.sampled_from(["network_args", "max_grad_norm_note", "my_key"]),
    st.text(alphabet=st.sampled_from(list("abz_-.09 ,=\"'[]")), min_size=1, max_size=10),
)


def _raw_property(workspace: Path, key: str, text: str) -> None:
    dest = _project(workspace)
    baseline = _baseline(dest, False)
    try:
        line = f"{toml_key(key)} = {toml_value(text)}"
    except TomlValueError:
        _count("refused: quoting")
        return
    out = _render(dest, lambda base: base.rstrip("\n") + f"\n{line}\n", False)
    if out is None:
        return
    rendered, config_text = out
    _check_rendered(rendered, config_text, baseline, {key: text}, set())


@FAST
@given(key=RAW_KEYS, text=TEXT)
def test_any_raw_sd_scripts_string(workspace: Path, key: str, text: str) -> None:
    _raw_property(workspace, key, text)


@pytest.mark.slow
@SLOW
@given(key=RAW_KEYS, text=TEXT)
def test_any_raw_sd_scripts_string_many(workspace: Path, key: str, text: str) -> None:
    _raw_property(workspace, key, text)


# File names: every character but "/" and NUL, at most 200 bytes (room for the suffix).
FILE_NAME = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
).filter(lambda n: n not in (".", "..") and len(n.encode("utf-8")) <= 200)


def _path_property(workspace: Path, name: str) -> None:
    """The project folder and the checkpoint named `name`: paths reach the config exactly."""
    root = workspace / "paths"
    root.mkdir(exist_ok=True)
    index = len(list(root.iterdir()))
    top = root / str(index)
    top.mkdir()
    try:
        dest = _project(top, dest_name=name, model_name=f"{name}.safetensors")
    except TomlValueError:
        assert _quoting_refusal_is_documented(str(top / name)), repr(name)
        _count("refused: quoting")
        return
    try:
        rendered = build_config(Layout.at(dest))
    except (SettingsError, TemplateError):
        _count("refused: path")
        return
    expect = {
        "pretrained_model_name_or_path": str(top / f"{name}.safetensors"),
        "train_data_dir": str(dest / "img"),
        "output_dir": str(dest / "model"),
        "logging_dir": str(dest / "log"),
    }
    baseline = _baseline(_project(workspace), False)
    _check_rendered(rendered, rendered.text, baseline, expect, set())


@FAST
@given(name=FILE_NAME)
def test_any_path_renders_exactly(workspace: Path, name: str) -> None:
    _path_property(workspace, name)


@pytest.mark.slow
@SLOW
@given(name=FILE_NAME)
def test_any_path_renders_exactly_many(workspace: Path, name: str) -> None:
    _path_property(workspace, name)


def test_trigger_starting_with_hash(workspace: Path) -> None:
    """Found by the slow variant: sd-scripts skips prompt lines starting with "#", so a
    trigger "#..." would silently turn sampling off; it is refused instead."""
    dest = _project(workspace)
    before = _COUNTS.get("refused: TemplateError", 0)
    _setting_property(workspace, "trigger", "#hero", True)
    assert _COUNTS.get("refused: TemplateError", 0) == before + 1
    with pytest.raises(TemplateError) as err:
        build_config(Layout.at(dest), ("trigger=#hero", "sample_every_n_epochs=1"))
    assert err.value.message.endswith(
        "sample_prompts.txt.j2: '#hero' cannot go into a sample prompt line: it starts with "
        "'#', and sd-scripts skips prompt lines starting with '#'"
    )


def test_property_outcomes_seen() -> None:
    """Runs last in this file: both outcomes (rendered, refused) actually occurred."""
    if not _COUNTS:
        pytest.skip("run with the property tests")
    print("render property outcomes:", dict(sorted(_COUNTS.items())))
    assert _COUNTS.get("rendered exactly", 0) > 0
