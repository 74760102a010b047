"""The lint's rule registry: every rule, in the order it runs, and the one loop that runs them.

A rule is a function of `RuleInput` that adds problems to `r.report`. Each reads only values
that already passed the type check (keys.py), so one wrong type gives one message, not a
cascade. Adding a rule: write it in the module of its kind (rules.py for cross-key rules,
hardware.py for what fails on a machine, files.py for what it reads on disk) and list it here.
"""

from __future__ import annotations

from collections.abc import Callable

from kohya_orchestrator.lint import dataset, files, hardware, rules
from kohya_orchestrator.lint.report import RuleInput

Rule = Callable[[RuleInput], None]

# (name, rule); the order is the order of the messages.
RULES: tuple[tuple[str, Rule], ...] = (
    ("required", rules.required),
    ("schedule", rules.schedule),
    ("epochs", rules.epochs),
    ("network", rules.network),
    ("optimizer", rules.optimizer),
    ("caching", rules.caching),
    ("resolution", rules.resolution),
    ("data loader", hardware.data_loader),
    ("platform", hardware.platform),
    ("sampling", rules.sampling),
    ("clip skip", rules.clip_skip),
    ("dataset config", rules.dataset_config),
    ("caption extension", rules.caption_extension),
)
# Rules that look at the files and folders the config names (skipped with check_files=False).
FILE_RULES: tuple[tuple[str, Rule], ...] = (
    ("paths", files.paths),
    ("folders", files.folders),
    ("dataset config file", dataset.dataset_file),
)


def apply_rules(r: RuleInput, *, check_files: bool) -> None:
    """Run every rule; problems go into `r.report`."""
    for _, rule in RULES + (FILE_RULES if check_files else ()):
        rule(r)
