"""One list each of schedulers, optimizers and samplers, shared by the settings and the lint."""

from __future__ import annotations

import json

import pytest
from testpaths import FACTS

from kohya_orchestrator.config.settings import resolve_settings
from kohya_orchestrator.errors import SettingsError
from kohya_orchestrator.lint.linter import lint
from kohya_orchestrator.sdscripts import choices

BASE = {"name": "hakone", "trigger": "hakone", "images": "/i", "model": "/m.safetensors"}


def test_a_bare_adafactor_scheduler_is_refused_by_settings_and_lint() -> None:
    # Regression: settings' own scheduler list held "adafactor" (which sd-scripts splits on
    # ":" and stops with an IndexError), while the lint's list refused it.
    with pytest.raises(SettingsError) as info:
        resolve_settings({**BASE, "lr_scheduler": "adafactor"})
    assert info.value.problems[0].startswith(
        'settings: lr_scheduler = "adafactor" must be one of linear, cosine,'
    )
    report = lint({"lr_scheduler": "adafactor"}, check_files=False)
    (problem,) = [p for p in report.errors if p.key == "lr_scheduler"]
    assert problem.hint == (
        'write "adafactor:<initial lr>" (e.g. "adafactor:1e-3"), with optimizer "AdaFactor"'
    )


def test_scheduler_forms() -> None:
    assert choices.is_scheduler("cosine_with_restarts")
    assert choices.is_scheduler("adafactor:1e-3")
    assert not choices.is_scheduler("adafactor")
    assert not choices.is_scheduler("adafactor:fast")
    assert choices.scheduler_hint("cosin") == 'did you mean "cosine"?'


def test_optimizers() -> None:
    assert choices.is_optimizer("adamw8bit")
    assert choices.is_optimizer("RAdam")
    assert choices.is_optimizer("bitsandbytes.optim.AdEMAMix")
    assert not choices.is_optimizer("AdamW9bit")
    assert choices.optimizer_hint("AdamW9bit") == 'did you mean "AdamW8bit"?'


@pytest.mark.parametrize("path", sorted(FACTS.glob("*train_network.*.json")), ids=lambda p: p.name)
def test_samplers_are_every_shipped_commits_choices(path: object) -> None:
    data = json.loads(FACTS.joinpath(str(path)).read_text())
    option = next(o for o in data["options"] if o["dest"] == "sample_sampler")
    assert tuple(option["choices"]) == choices.SAMPLERS
