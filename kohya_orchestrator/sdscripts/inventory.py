"""What `kohya-orch contract show` lists: every facts file shipped or kept, and who pins it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.sdscripts.contract import DATA_DIR, read_facts_file, user_contract_dir
from kohya_orchestrator.sdscripts.versions import NEWEST, RELEASES


@dataclass(frozen=True)
class FactsEntry:
    commit: str
    label: str
    pinned_by: str
    date: str
    scripts: dict[str, int] = field(default_factory=dict)  # script -> options


@dataclass(frozen=True)
class Inventory:
    shipped: list[FactsEntry]
    refreshed: list[FactsEntry]
    refreshed_dir: Path

    def lines(self) -> list[str]:
        out = ["Argument facts shipped (chosen by the commit of the sd-scripts checkout in use):"]
        for e in self.shipped:
            out.append(f"  {e.label:<9} {e.pinned_by} ({e.date}), commit {e.commit}")
            out.append("            " + ", ".join(f"{s} ({n})" for s, n in e.scripts.items()))
        out.append(
            f"Without a checkout, or at a commit whose facts cannot be read: {NEWEST.describe()}."
        )
        if self.refreshed:
            out.append(f"Read from checkouts (`contract refresh`), in {self.refreshed_dir}:")
            for e in self.refreshed:
                out.append(
                    f"  {e.commit[:10]}  " + ", ".join(f"{s} ({n})" for s, n in e.scripts.items())
                )
        else:
            out.append(f"Facts read from checkouts would be kept in {self.refreshed_dir}")
        return out

    def to_dict(self) -> dict[str, Any]:
        def entry(e: FactsEntry) -> dict[str, Any]:
            return {
                "sd_scripts_commit": e.commit,
                "label": e.label,
                "pinned_by": e.pinned_by,
                "date": e.date,
                "scripts": e.scripts,
            }

        return {
            "shipped": [entry(e) for e in self.shipped],
            "refreshed": [entry(e) for e in self.refreshed],
            "refreshed_dir": str(self.refreshed_dir),
            "default": NEWEST.commit,
        }


def _options(path: Path) -> int:
    return len(json.loads(path.read_text(encoding="utf-8"))["options"])


def facts_inventory() -> Inventory:
    """Every shipped facts file by release, and every commit kept from a checkout."""
    shipped = []
    for release in RELEASES:
        files = sorted(DATA_DIR.glob(f"*.{release.label}.json"), key=_script_order)
        scripts = {read_facts_file(p).script: _options(p) for p in files}
        shipped.append(
            FactsEntry(release.commit, release.label, release.pinned_by, release.date, scripts)
        )
    folder = user_contract_dir()
    refreshed = []
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = sorted(sub.glob("*.json"), key=_script_order)
            if files:
                scripts = {read_facts_file(p).script: _options(p) for p in files}
                refreshed.append(FactsEntry(sub.name, sub.name[:8], "", "", scripts))
    return Inventory(shipped, refreshed, folder)


_ORDER = ("sdxl_train_network", "train_network", "flux_train_network", "sd3_train_network")


def _script_order(path: Path) -> tuple[int, str]:
    stem = path.name.split(".", 1)[0]
    return (_ORDER.index(stem) if stem in _ORDER else len(_ORDER), stem)
