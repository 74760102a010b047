"""`tags`: bulk edits of every caption in a folder (add, remove, replace, first, prune traits).

`edit` builds the pure per-caption function; `plan_tag_edit` runs it through `caption`'s own
planning (caption_apply.plan_captions with a transform), so the edit is written exactly as
`caption` writes: the caption file and the embedded caption, each file replaced atomically,
image first and caption file last, under the folder's lock. Every operation is idempotent,
so a run stopped at any point is finished by running the same command again (the files
already edited are up to date, the others are edited). Tags compare ignoring case; the
trigger always stays first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kohya_orchestrator.dataset.captions import Trigger, parse_trigger, split_tags
from kohya_orchestrator.errors import CaptionError, InputError

if TYPE_CHECKING:
    from kohya_orchestrator.dataset.caption_apply import CaptionPlan, Transform

OPERATIONS = ("add", "remove", "replace", "first")


def parse_values(values: Sequence[str]) -> list[str]:
    """The tags given on the command line: each argument may hold several, comma-separated."""
    tags: list[str] = []
    for value in values:
        try:
            tags.extend(split_tags(value))
        except CaptionError as exc:
            raise InputError(f"tags: {exc.message}", exc.hint) from exc
    return list(dict.fromkeys(tags))


def edit(operation: str, values: Sequence[str]) -> Transform:
    """The function one caption's tags go through (pure); InputError for a bad request."""
    tags = parse_values(values)
    if operation not in OPERATIONS:
        raise InputError(
            f"Unknown tags operation {operation!r}.", f"Use one of {', '.join(OPERATIONS)}."
        )
    if not tags:
        raise InputError(
            f"tags {operation}: give at least one tag.",
            'e.g. kohya-orch tags DIR add "glasses, black hair"',
        )
    if operation == "replace" and len(tags) != 2:
        raise InputError(
            f"tags replace takes two tags, OLD and NEW; got {len(tags)}.",
            'e.g. kohya-orch tags DIR replace "black_hair" "black hair"',
        )
    folded = [t.casefold() for t in tags]

    def apply(image: Path, current: list[str]) -> list[str]:
        if operation == "add":
            have = {t.casefold() for t in current}
            return [*current, *(t for t in tags if t.casefold() not in have)]
        if operation == "remove":
            return [t for t in current if t.casefold() not in folded]
        if operation == "replace":
            old, new = folded[0], tags[1]
            swapped = [new if t.casefold() == old else t for t in current]
            return list(dict.fromkeys(swapped))
        present = [t for t in tags if t.casefold() in {c.casefold() for c in current}]
        rest = [t for t in current if t.casefold() not in {p.casefold() for p in present}]
        return [*present, *rest]

    return apply


def plan_tag_edit(
    folder: Path,
    trigger: str | Trigger,
    transform: Transform,
    ext: str = ".txt",
    *,
    captionless: bool = False,
) -> CaptionPlan:
    """What the edit would write (nothing is written): `caption`'s plan with `transform`.

    Images without any caption are left alone unless `captionless` (`add` gives them the
    trigger and the tags)."""
    from dataclasses import replace

    from kohya_orchestrator.dataset.caption_apply import plan_captions

    trig = trigger if isinstance(trigger, Trigger) else parse_trigger(trigger)
    plan = plan_captions(folder, trig, None, ext, transform=transform)
    if captionless:
        return plan
    items = tuple(
        replace(i, image_changes=False, txt_changes=False) if i.source == "empty" else i
        for i in plan.items
    )
    return replace(plan, items=items)


def merge_tagged(tagged: dict[Path, str], *, replace: bool = False) -> Transform:
    """`tag`'s merge: each image's tagger tags added to its caption (the ones it lacks,
    compared ignoring case), or with `replace` instead of it. Images the tagger gave no
    tags keep their caption."""

    def apply(image: Path, current: list[str]) -> list[str]:
        text = tagged.get(image)
        if text is None:
            return current
        new = split_tags(text)
        if replace:
            return list(dict.fromkeys(new))
        have = {t.casefold() for t in current}
        return [*current, *dict.fromkeys(t for t in new if t.casefold() not in have)]

    return apply
