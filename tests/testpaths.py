"""Paths the tests share: the repository, its templates, fixtures, golden files and helpers."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TEMPLATES = ROOT / "templates"
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"
FACTS = ROOT / "kohya_orchestrator" / "sdscripts" / "data"
FAKE_TRAINER = TESTS / "fake_trainer.py"
VENDOR_SD_SCRIPTS = ROOT / "vendor" / "sd-scripts"
