"""Render DEST/config.toml (and the sample prompts) from the settings and a template.

`build_config` is pure apart from reading the settings, the checkpoint header and the
templates: it renders, parses the text back with both `tomllib` and `toml` (the parser
sd-scripts uses), checks every value against the one intended, and lints the result.
`write_config` writes the files atomically.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.config.schema import ALIASES, SETTING_FOR_ARG, SPEC_BY_KEY, Settings
from kohya_orchestrator.config.settings import load_settings
from kohya_orchestrator.config.templates import Rendered, TemplateInfo, TrackingDict, render
from kohya_orchestrator.config.tomlquote import toml_key, toml_value
from kohya_orchestrator.errors import ConfigError, TemplateError
from kohya_orchestrator.layout import Layout
from kohya_orchestrator.lint.linter import lint
from kohya_orchestrator.lint.report import LintReport, Problem
from kohya_orchestrator.project.args import build_args
from kohya_orchestrator.sdscripts.checkpoint import ModelInfo, require_trainable
from kohya_orchestrator.sdscripts.contract import Contract, Flattened, flatten
from kohya_orchestrator.sdscripts.facts import FactsChoice, choose_facts
from kohya_orchestrator.sdscripts.trainers import trainer

SAMPLE_PROMPTS_TEMPLATE = "sample_prompts.txt.j2"


def sample_prompts_template(settings: Settings) -> str:
    """The sample prompts' template: sample_prompts.txt.j2 for the neutral preset, else
    sample_prompts_<preset>.txt.j2 (`sample_prompts_preset = "pony"`)."""
    preset = settings.sample_prompts_preset
    return SAMPLE_PROMPTS_TEMPLATE if preset == "neutral" else f"sample_prompts_{preset}.txt.j2"


@dataclass
class RenderedConfig:
    """A rendered, parsed-back and linted training config, ready to write."""

    text: str
    values: dict[str, Any]
    # The one flattening of `values` (the namespace sd-scripts builds from the file).
    flattened: Flattened
    script: str
    settings: Settings
    report: LintReport
    notes: list[str]
    model: ModelInfo
    template: TemplateInfo
    sample_prompts: str | None = None
    sample_template: TemplateInfo | None = None
    args: dict[str, Any] = field(default_factory=dict)
    layout: Layout | None = None
    facts: FactsChoice | None = None

    @property
    def flat(self) -> dict[str, Any]:
        return self.flattened.values


def parse_back(text: str, source: str) -> dict[str, Any]:
    """Parse rendered TOML with tomllib and toml; TemplateError unless both agree."""
    import toml

    try:
        by_tomllib = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{source} rendered invalid TOML: {exc}") from None
    try:
        by_toml = dict(toml.loads(text))
    except toml.TomlDecodeError as exc:
        raise TemplateError(
            f"{source} rendered TOML that sd-scripts' parser (toml 0.10.2) rejects: {exc}"
        ) from None
    if by_tomllib != by_toml:
        diff = sorted(
            k for k in set(by_tomllib) | set(by_toml) if by_tomllib.get(k) != by_toml.get(k)
        )
        raise TemplateError(
            f"{source}: tomllib and toml read the rendered file differently "
            f"(keys: {', '.join(diff)})."
        )
    return by_toml


def _check_intended(flat: Mapping[str, Any], args: Mapping[str, Any], source: str) -> None:
    """Every intended argument must come back from the rendered file, same value, same type.

    Not only the keys the template read: a user's copy that drops a line or hard-codes a value
    would otherwise train with sd-scripts' default or the stale value, silently. Keys the
    packaged templates write only on a condition (reg_data_dir, v2, sampling) are absent from
    `args` when the condition is off, so they are not asked for.
    """
    wrong = [
        f"{_named(key)}: intended {toml_value(args[key])}, parsed back {toml_value(flat[key])}"
        if key in flat
        else f"{_named(key)}: intended {toml_value(args[key])}, missing after parsing"
        for key in args
        if key not in flat or flat[key] != args[key] or type(flat[key]) is not type(args[key])
    ]
    if wrong:
        raise TemplateError(
            f"{source}: the rendered values differ from the settings:\n  " + "\n  ".join(wrong),
            "Write every key from `args` through the `toml` filter, "
            "`key = {{ args.key | toml }}`, and keep every key of the packaged template.",
        )


def _named(key: str) -> str:
    setting = SETTING_FOR_ARG.get(key)
    return f"{key} (setting {setting!r})" if setting else key


def _append_raw(text: str, raw: Mapping[str, Any]) -> str:
    """The raw keys in a table of their own: sd-scripts flattens every table alike, and a
    key the template writes too then shows up as set twice instead of a TOML error."""
    lines = ["", "# --- Raw sd-scripts keys from [sd_scripts] in kohya-orch.toml", "[sd_scripts]"]
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in raw.items()]
    return text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def _context(
    settings: Settings, model: ModelInfo, script: str, args: TrackingDict
) -> dict[str, Any]:
    width, height = settings.sample_width_height
    return {
        "args": args,
        "settings": settings.values(),
        "family": model.family,
        "family_label": model.label,
        "script": script,
        "profile": settings.profile,
        "sampling": settings.sampling,
        "trigger": settings.trigger,
        "name": settings.name,
        "width": width,
        "height": height,
        "sample_seed": settings.sample_seed,
        "sample_steps": settings.sample_steps,
        "sample_cfg": settings.sample_cfg,
        "sample_sampler": settings.sample_sampler,
    }


def build_config(
    layout: Layout,
    overrides: Sequence[str] = (),
    templates_dir: Path | None = None,
    *,
    sd_scripts: Path | None = None,
    python: str | None = None,
    read_parser: bool = True,
) -> RenderedConfig:
    """Settings -> rendered, parsed-back, linted config (nothing written).

    Paths in the config are absolute (sd-scripts runs from its own folder); a relative
    `model` in the settings is taken relative to DEST. The facts it is checked against are
    those of the sd-scripts checkout in use (`facts.choose_facts`; --sd-scripts DIR, ...).
    """
    dest = layout.dest
    settings = load_settings(layout, overrides)
    settings.model = str(dest / Path(settings.model).expanduser())
    model = require_trainable(Path(settings.model))
    family = trainer(model.family)
    script = family.script
    facts = choose_facts(script, sd_scripts=sd_scripts, python=python, read_parser=read_parser)
    args_plain = build_args(settings, layout, family)
    _require_options(args_plain, settings, facts.contract)
    args = TrackingDict(args_plain)
    rendered: Rendered = render(
        family.template or "",
        _context(settings, model, script, args),
        dest=dest,
        templates_dir=templates_dir,
    )
    source = str(rendered.template.path)
    unread = {k: v for k, v in settings.sd_scripts.items() if k not in args.read}
    text = _append_raw(rendered.text, unread) if unread else rendered.text
    values = parse_back(text, source)
    flattened = flatten(values)
    # A raw key the template writes too is set twice: the template's line would be hidden.
    clash = sorted(k for k in unread if len(flattened.places.get(k, ())) > 1)
    if clash:
        raise TemplateError(
            f"{source} writes {', '.join(clash)} itself, so [sd_scripts] in kohya-orch.toml "
            "cannot override it.",
            "Render the value from `args` in the template, or drop the key from [sd_scripts].",
        )
    _check_intended(flattened.values, args_plain, source)

    notes = list(settings.notes)
    notes += _folder_notes(settings, layout)
    if not family.uses_clip_skip:
        notes.append(
            f"clip_skip = {settings.clip_skip} is not written: {family.label} training ignores "
            "it; use it in Forge when generating."
        )
    sample_text = None
    sample_info = None
    if settings.sampling:
        sample = render(
            sample_prompts_template(settings),
            _context(settings, model, script, TrackingDict(args_plain)),
            dest=dest,
            templates_dir=templates_dir,
        )
        sample_text, sample_info = sample.text, sample.template

    report = _lint(flattened, facts, layout, settings, writes_samples=sample_text is not None)
    return RenderedConfig(
        text=text,
        values=values,
        flattened=flattened,
        script=script,
        settings=settings,
        report=report,
        notes=notes,
        model=model,
        template=rendered.template,
        sample_prompts=sample_text,
        sample_template=sample_info,
        args=args_plain,
        layout=layout,
        facts=facts,
    )


def _folder_notes(settings: Settings, layout: Layout) -> list[str]:
    """sd-scripts reads repeats from the folder name: say so when it and the settings differ
    (for every concept)."""
    if not layout.img_dir.is_dir():
        return []
    found = sorted(p.name for p in layout.img_dir.iterdir() if p.is_dir())
    notes = []
    for i, c in enumerate(settings.train_concepts):
        concept = layout.img_dir / c.folder_name(settings.name)
        if concept.is_dir():
            continue
        what = f"repeats = {c.repeats}" if i == 0 else f"the concept {c.images} ({c.repeats})"
        notes.append(
            f"{what} but there is no {concept.relative_to(layout.dest)} "
            f"(found: {', '.join(found) or 'nothing'}); sd-scripts takes the repeats from the "
            "folder name, so run `kohya-orch prepare` again to apply the settings."
        )
    return notes


def _require_options(args: Mapping[str, Any], settings: Settings, contract: Contract) -> None:
    """Every key the settings render must be an option of the commit in use."""
    raw = settings.sd_scripts
    missing = [k for k in args if k not in contract.options and k not in raw]
    if missing:
        raise ConfigError(
            f"sd-scripts {contract.version} has no option for what the settings ask:",
            [f"{key} (setting {SETTING_FOR_ARG.get(key, key)!r})" for key in missing],
            "Update sd-scripts (`make sd-scripts`), or change those settings back to their "
            "defaults.",
        )


def _lint(
    flattened: Flattened,
    facts: FactsChoice,
    layout: Layout,
    settings: Settings,
    *,
    writes_samples: bool,
) -> LintReport:
    report = lint(
        flattened,
        contract=facts.contract,
        config_path=layout.config_file,
        profile=settings.profile,
    )
    report.facts = facts.line()
    if facts.warning:
        report.warn("", facts.warning, facts.hint or "")
    if writes_samples:
        # write_config writes the prompts file together with the config.
        report.errors = [
            p
            for p in report.errors
            if not (p.key == "sample_prompts" and p.message.endswith("does not exist"))
        ]
    return report


def problem_lines(rendered: RenderedConfig) -> list[str]:
    """The lint errors, each saying which setting (or raw key) to change, and where it
    came from: --set, the settings file, the profile or the default."""
    return settings_problem_sources(rendered.report.errors, rendered.settings)


def settings_problem_sources(problems: Sequence[Problem], settings: Settings) -> list[str]:
    """Each problem's text with the source of the value it is about."""
    lines = []
    for problem in problems:
        text = problem.render()
        source = value_source(problem.key, settings)
        if source:
            text += f"\n    ({source})"
        lines.append(text)
    return lines


def value_source(key: str, settings: Settings) -> str | None:
    """Where the value of sd-scripts key `key` comes from, in words."""
    raw_origin = settings.origins.get(f"sd_scripts.{key}")
    if key in settings.sd_scripts:
        where = (
            f"from --set sd_scripts.{key}"
            if raw_origin == "--set"
            else f"from sd_scripts.{key} in kohya-orch.toml"
        )
        meant = ALIASES.get(key)
        return f"{where}; kohya-orch's setting for it is {meant!r}" if meant else where
    setting = SETTING_FOR_ARG.get(key) or (key if key in SPEC_BY_KEY else None)
    if setting is None:
        return None
    origin = settings.origins.get(setting)
    where = {
        "--set": "from --set",
        "file": "in kohya-orch.toml",
        "profile": f"from the profile {settings.profile!r}",
        "default": "its default",
        "derived": "derived from the other settings",
    }.get(origin or "", "in kohya-orch.toml")
    return f"setting {setting!r}, {where}"


def refuse_errors(rendered: RenderedConfig, outcome: str = "") -> None:
    """Raise ConfigError listing the lint errors (each naming its setting), if any.

    `outcome` says what did not happen, e.g. "nothing was written"; every command that
    uses a rendered config (config, plan, train) refuses the same way.
    """
    if rendered.report.ok:
        return
    raise ConfigError(
        f"The rendered config has errors{'; ' + outcome if outcome else ''}:",
        problem_lines(rendered),
        "Fix the settings (kohya-orch.toml or --set) or the template.",
    )


def write_config(rendered: RenderedConfig, layout: Layout) -> Path:
    """Write DEST/config.toml (and DEST/sample_prompts.txt when sampling); refuse on errors."""
    from kohya_orchestrator.fsutil import atomic_write_text

    refuse_errors(rendered, "nothing was written")
    if rendered.sample_prompts is not None:
        atomic_write_text(layout.sample_prompts_file, rendered.sample_prompts)
    atomic_write_text(layout.config_file, rendered.text)
    return layout.config_file
