"""What every fault-injection test module shares: the counters and the terminal summary, the
invariant checker, the pristine dataset, the kill-delay draw, and the leftover checks.

test_faults.py (rename, caption, prepare, full disk), test_faults_more.py (export, config,
templates cp, caption --tags, grid, train's record) and test_concurrency.py (two commands
at once on one folder) count into the same summary, printed once at the end.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faultkit import checkpoint, make_dataset, timed

from kohya_orchestrator.dataset.journal import JOURNAL_NAME, RENAME_TEMP_PREFIX
from kohya_orchestrator.fsutil import TEMP_PREFIX
from kohya_orchestrator.locking import LOCK_NAME
from kohya_orchestrator.project.manifest import MANIFEST_NAME

IMAGES = 240
PREFIX = "fault"
FAST_SEEDS = (1, 2, 3)
# Files a kill may leave that belong to the tool, not the user (the lock file keeps a
# killed run's record of its temps until the next run takes the lock).
TOOL_NAMES = (JOURNAL_NAME, MANIFEST_NAME, LOCK_NAME)
PROBLEM_KINDS = ("lost", "corrupt", "duplicated", "temps")

STATS: Counter[str] = Counter()
PROBLEMS: Counter[str] = Counter()


class _Summary:
    """Prints the totals at the end of the session (registered by the `summary` fixture)."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not STATS:
            return
        tr = terminalreporter
        tr.section("fault injection")
        commands = [k[len("trials ") :] for k in STATS if k.startswith("trials ")]
        for command in commands:
            if command == "disk":
                continue
            tr.write_line(
                f"{command}: {STATS[f'trials {command}']} kill trials "
                f"({STATS[f'killed {command}']} killed mid-run, "
                f"{STATS[f'finished {command}']} finished first; "
                f"{STATS[f'halfway {command}']} left the job half done), "
                f"{STATS[f'invariants {command}']} invariants checked"
            )
        pairs = [k[len("pairs ") :] for k in STATS if k.startswith("pairs ")]
        for pair in pairs:
            tr.write_line(
                f"at once, {pair}: {STATS[f'pairs {pair}']} pairs "
                f"({STATS[f'refused {pair}']} refused by the lock, "
                f"{STATS[f'overlapped {pair}']} both ran), "
                f"{STATS[f'invariants {pair}']} invariants checked"
            )
        if STATS["trials disk"]:
            tr.write_line(
                f"full disk / read-only: {STATS['trials disk']} runs, "
                f"{STATS['invariants disk']} invariants checked"
            )
        total = sum(v for k, v in STATS.items() if k.startswith("invariants"))
        trials = sum(v for k, v in STATS.items() if k.startswith(("trials", "pairs")))
        tr.write_line(
            f"total: {trials} trials, {total} invariants checked; "
            f"{PROBLEMS['lost']} lost, {PROBLEMS['corrupt']} corrupt, "
            f"{PROBLEMS['duplicated']} duplicated, {PROBLEMS['temps']} temps left, "
            f"{PROBLEMS['other']} other problems"
        )


SUMMARY = _Summary()


@pytest.fixture(scope="session", autouse=True)
def summary(pytestconfig: pytest.Config) -> None:
    if not pytestconfig.pluginmanager.is_registered(SUMMARY):
        pytestconfig.pluginmanager.register(SUMMARY, "fault-summary")


@dataclass
class Checker:
    """Counts invariants checked and collects every violation of a trial."""

    command: str
    where: str
    problems: list[str] = field(default_factory=list)

    def __call__(self, ok: bool, kind: str, message: str) -> None:
        STATS[f"invariants {self.command}"] += 1
        if not ok:
            PROBLEMS[kind if kind in PROBLEM_KINDS else "other"] += 1
            self.problems.append(f"{kind}: {message}")

    def done(self) -> None:
        assert not self.problems, f"{self.where}:\n" + "\n".join(self.problems[:30])


@dataclass
class Pristine:
    root: Path
    source: Path
    model: Path
    files: dict[str, bytes]


def make_pristine(tmp_path_factory: pytest.TempPathFactory, images: int = IMAGES) -> Pristine:
    root = tmp_path_factory.mktemp("faults")
    source = make_dataset(root / "pristine", images)
    model = checkpoint(root / "sdxl.safetensors")
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    return Pristine(root, source, model, files)


def measure(argv_for: Any, scratch: Path, source: Path) -> float:
    """One uninterrupted run's duration, after a warm-up run (fresh .pyc files, cold cache)."""
    shutil.copytree(source, scratch)
    timed(argv_for(scratch))
    shutil.rmtree(scratch)
    shutil.copytree(source, scratch)
    return timed(argv_for(scratch))


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def draw(seed: int, duration: float, planned: float) -> float:
    """Even seeds: anywhere in the run. Odd seeds: after the planning (timed with --dry-run),
    where the writes happen, so that more trials stop the command halfway through."""
    low = min(planned, duration) if seed % 2 else 0.0
    return random.Random(seed).uniform(low, duration)


def planned(argv: list[str]) -> float:
    """How long the command takes to start, read and plan: its --dry-run (it must succeed)."""
    return timed([*argv, "--dry-run"])


def record(command: str, killed: bool) -> None:
    STATS[f"trials {command}"] += 1
    STATS[f"{'killed' if killed else 'finished'} {command}"] += 1


def halfway(command: str, half: bool) -> None:
    """Count a kill that left the data between the old and the new state."""
    STATS[f"halfway {command}"] += int(half)


def diff(now: dict[str, Any], want: dict[str, Any]) -> str:
    extra = sorted(set(now) - set(want))[:5]
    missing = sorted(set(want) - set(now))[:5]
    changed = sorted(n for n in set(now) & set(want) if now[n] != want[n])[:5]
    return f"extra {extra}, missing {missing}, changed {changed}"


def leftovers(*folders: Path) -> list[Path]:
    """Temps and lock files anywhere under `folders`."""
    found = []
    for folder in folders:
        if folder.exists():
            found += [
                p
                for p in folder.rglob("*")
                if p.name.startswith((TEMP_PREFIX, RENAME_TEMP_PREFIX)) or p.name == LOCK_NAME
            ]
    return sorted(found)


def no_temps_left(check: Checker, *folders: Path) -> None:
    """After the re-run: no temp, no rename temp and no lock file anywhere under `folders`."""
    left = leftovers(*folders)
    check(not left, "temps", f"left after the re-run: {[str(p) for p in left[:5]]}")
