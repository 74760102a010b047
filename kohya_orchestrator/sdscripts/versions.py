"""The sd-scripts versions users have, and the ones kohya-orch ships argument facts for.

Most users run the sd-scripts that the kohya_ss GUI pins as a git submodule (SD_SCRIPTS.md,
"The versions users have"). Facts ship for each commit below, one JSON file per script in
data/ (`<script stem>.<label>.json`, dumped from that commit's own parser).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Release:
    """One sd-scripts commit kohya-orch ships facts for, and who pins it."""

    label: str  # the name of its facts files: the short commit, or the tag
    commit: str
    date: str
    pinned_by: str  # where users get it
    short_pin: str  # the same, in the one "facts used" line

    @property
    def short(self) -> str:
        return self.commit[:8]

    def describe(self) -> str:
        """`6721028c (kohya_ss v26 pin)`."""
        return f"{self.short} ({self.short_pin})"


RELEASES: tuple[Release, ...] = (
    Release(
        "6721028c",
        "6721028c79ee85a78b3a06dfd8954dae310a1cce",
        "2026-06-16",
        "kohya_ss master and v26.0.0; sd-scripts v0.11.1",
        "kohya_ss v26 pin",
    ),
    Release(
        "2e0fcc50",
        "2e0fcc50cb347323b4374bfd05784587c5fa7f2d",
        "2025-07-10",
        "kohya_ss v25.2.2",
        "kohya_ss v25.2.2 pin",
    ),
    Release(
        "48d368fa",
        "48d368fa557731ad0488c07304dfeba8c07910eb",
        "2026-02-16",
        "sd-scripts main (stored mirror's head)",
        "sd-scripts main",
    ),
    Release(
        "v0.9.1",
        "8f4ee8fc343b047965cd8976fca65c3a35b7593a",
        "2025-03-21",
        "sd-scripts release v0.9.1",
        "sd-scripts v0.9.1",
    ),
)
# The commit the project pins (vendor/sd-scripts.pin) and the facts used when the checkout
# in use cannot be told: what most users run.
NEWEST = RELEASES[0]


def release_of(commit: str) -> Release | None:
    """The shipped release a commit (full, short, or a label such as "v0.9.1") names."""
    text = commit.strip().lower()
    for release in RELEASES:
        if text in (release.label.lower(), release.commit) or (
            len(text) >= 7 and release.commit.startswith(text)
        ):
            return release
    return None
