"""Shared test fixtures and the Hypothesis profiles."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from hypothesis import settings

# `make test` (and CI) runs property tests derandomized: the same examples every run, so a
# green suite stays green and a failure reproduces. HYPOTHESIS_PROFILE=explore draws new
# random examples each run (with the example database) to hunt for new failures.
settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(autouse=True)
def _no_sd_scripts_of_this_machine(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests see only the sd-scripts checkouts they make: not $KOHYA_SD_SCRIPTS, not this
    checkout's vendor/ (after `make sd-scripts`), not ~/kohya_ss, and facts read from
    checkouts go to a folder of the test's own."""
    from kohya_orchestrator.sdscripts import checkout

    base = tmp_path_factory.mktemp("machine")
    monkeypatch.delenv("KOHYA_SD_SCRIPTS", raising=False)
    monkeypatch.setattr(checkout, "REPO_ROOT", base / "repo")
    monkeypatch.setenv("HOME", str(base / "home"))
    monkeypatch.setenv("KOHYA_ORCH_CONTRACT_DIR", str(base / "contract"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
