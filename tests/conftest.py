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


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
