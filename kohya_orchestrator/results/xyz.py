"""The Forge X/Y/Z plot that compares a run's epochs: the Prompt S/R value and the LoRA tag.

Forge's "Prompt S/R" takes the first value as the search string and, for each value in turn,
replaces every occurrence of it in the prompt and negative prompt (xyz_grid.apply_prompt:
`p.prompt.replace(xs[0], x)`).
So the prompt must contain the first value exactly once, inside `<lora:FIRST:weight>`, and
nothing else in the prompt may contain it. The list names only files that exist (or will):
sd-scripts saves the last epoch as `<name>.safetensors`, never `<name>-0000NN`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.errors import InputError, ResultsError
from kohya_orchestrator.results.model import Results, parse_int
from kohya_orchestrator.results.scan import scan_results
from kohya_orchestrator.sdscripts.epochs import lora_stem, saved_epochs


@dataclass(frozen=True)
class XyzPlan:
    """What to paste into Forge: the S/R values, the LoRA tag, and what to watch out for."""

    name: str
    stems: list[str]
    epochs: list[int | None]
    source: str  # "files", "settings" or "planned"
    weight: float = 1.0
    warnings: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    @property
    def first(self) -> str:
        return self.stems[0]

    @property
    def sr_value(self) -> str:
        """The comma-separated values; Forge reads them as CSV, so odd names get quoted."""
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(self.stems)
        return buf.getvalue()

    @property
    def lora_tag(self) -> str:
        return f"<lora:{self.first}:{format_weight(self.weight)}>"

    @property
    def reminder(self) -> str:
        return (
            f"Prompt S/R replaces the first value, {self.first}, everywhere it appears in the "
            f"prompt and negative prompt: put {self.lora_tag} in the prompt exactly as shown, "
            "and nothing else that contains that text."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "values": self.stems,
            "epochs": self.epochs,
            "sr_value": self.sr_value,
            "lora_tag": self.lora_tag,
            "reminder": self.reminder,
            "warnings": self.warnings,
            "hints": self.hints,
        }


def format_weight(weight: float) -> str:
    """1.0 -> "1", 0.75 -> "0.75" (as people write LoRA weights)."""
    return f"{weight:g}"


def thin(
    entries: list[tuple[str, int | None]],
    every: int | None,
    last: int | None,
    *,
    final: bool = True,
) -> list[tuple[str, int | None]]:
    """Keep epochs divisible by `every`, then the last `last` of them; the final file always.

    `entries` are (stem, epoch) in order; with `final` the last one is the final unnumbered
    file (its epoch may be None), kept whatever `every` says. A run still training has no
    final file yet (`final=False`): its last saved epoch is thinned like the others.
    """
    if not entries:
        return []
    numbered, tail = (entries[:-1], entries[-1:]) if final else (entries, [])
    if every:
        numbered = [(s, e) for s, e in numbered if e is not None and e % every == 0]
    kept = [*numbered, *tail]
    if last:
        kept = kept[-last:]
    return kept


def build_xyz(
    name: str,
    entries: list[tuple[str, int | None]],
    *,
    source: str,
    every: int | None = None,
    last: int | None = None,
    weight: float = 1.0,
    trigger: str | None = None,
    clip_skip: int | None = None,
    final: bool = True,
) -> XyzPlan:
    """The plan for `entries` (stem, epoch), thinned; checks the S/R pitfalls.

    `final`: whether the last entry is the run's final unnumbered file (see `thin`).
    """
    kept = thin(entries, every, last, final=final)
    if not kept:
        raise ResultsError(f"No LoRA files to compare for {name!r}.")
    stems = [s for s, _ in kept]
    warnings: list[str] = []
    first = stems[0]
    if len(stems) == 1:
        warnings.append(
            f"only one value ({first}): nothing to compare; Prompt S/R needs two or more "
            "(drop --every/--last, or wait for more epochs)"
        )
    if trigger and first in trigger:
        warnings.append(
            f"the trigger {trigger!r} contains the first value {first!r}: Prompt S/R would "
            "replace it inside the trigger too; put a numbered epoch first"
        )
    hints: list[str] = []
    if clip_skip and clip_skip > 1:
        hints.append(
            f"generate with Clip skip {clip_skip} in Forge (Settings > Stable Diffusion), as "
            "anime-style models such as Pony expect; the training settings say clip_skip "
            f"{clip_skip}"
        )
    elif clip_skip == 1:
        hints.append("generate with Clip skip 1 in Forge (the training settings say clip_skip 1)")
    return XyzPlan(
        name=name,
        stems=stems,
        epochs=[e for _, e in kept],
        source=source,
        weight=weight,
        warnings=warnings,
        hints=hints,
    )


def planned_entries(name: str, epochs: int, save_every: int | None) -> list[tuple[str, int | None]]:
    """(stem, epoch) of every file a run of `epochs` epochs saving every `save_every` writes."""
    check_name(name)
    if epochs < 1:
        raise InputError(f"Epochs must be at least 1, got {epochs}.")
    return [(lora_stem(name, e, epochs), e) for e in saved_epochs(epochs, save_every)]


def check_name(name: str) -> None:
    """An output name is a file stem: no folders, not empty."""
    if not name.strip() or "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(
            f"Not a LoRA output name: {name!r}.",
            "Give the output name alone, e.g. yumoto_hakone (no folder, no extension).",
        )


def xyz_for_dest(
    dest: Path,
    *,
    every: int | None = None,
    last: int | None = None,
    weight: float = 1.0,
    trigger: str | None = None,
) -> XyzPlan:
    """From the files in DEST/model/ when there are any, else from the project's settings."""
    return xyz_from_results(
        scan_results(dest), every=every, last=last, weight=weight, trigger=trigger
    )


def xyz_from_results(
    results: Results,
    *,
    every: int | None = None,
    last: int | None = None,
    weight: float = 1.0,
    trigger: str | None = None,
) -> XyzPlan:
    """The plan for a scanned run: its files, or the settings' planned files when none yet.

    `trigger` (checked against the S/R value) defaults to the settings' trigger.
    """
    settings = results.settings
    if trigger is None and settings is not None:
        trigger = settings.trigger
    clip_skip = settings.clip_skip if settings else None
    if results.files and results.name:
        if clip_skip is None:
            clip_skip = parse_int(results.files[-1].metadata.get("ss_clip_skip"))
        plan = build_xyz(
            results.name,
            [(f.stem, f.shown_epoch) for f in results.files],
            source="files",
            every=every,
            last=last,
            weight=weight,
            trigger=trigger,
            clip_skip=clip_skip,
            final=results.files[-1].is_final,
        )
        if not results.files[-1].is_final:
            # Only files that exist: a value naming a missing file renders without the LoRA.
            plan.warnings.append(
                f"no final {results.name}.safetensors yet (training running or stopped): "
                "the list has the epochs saved so far"
            )
        return plan
    if settings is None or not settings.epochs:
        raise ResultsError(
            f"No LoRA files in {results.dest / 'model'} and no settings to plan from.",
            "Give a project folder made by `kohya-orch prepare`, or a name: "
            "kohya-orch xyz NAME --epochs 15",
        )
    return build_xyz(
        settings.name,
        planned_entries(settings.name, settings.epochs, settings.save_every),
        source="settings",
        every=every,
        last=last,
        weight=weight,
        trigger=trigger,
        clip_skip=clip_skip,
    )
