"""Tags across a dataset: frequencies, where the trigger stands, captions that are the trigger
alone, and the character traits a trigger should absorb (`captions --stats`, `tags
--prune-traits`).

Reads only the caption files (what sd-scripts reads), never the images, so 10,000 captions
take well under a second. `count_tags` is pure; `read_captions` does the reading.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kohya_orchestrator.dataset.captions import Trigger, guess_trigger_of_tags, split_tags
from kohya_orchestrator.dataset.scan import IMAGES_HINT, is_image_name, natural_key, require_folder
from kohya_orchestrator.errors import CaptionError, DatasetError

# Tags that describe the character rather than the picture: hair, eyes, skin, body marks and
# fixed accessories (booru tags, spaces or underscores). `--prune-traits` proposes those that
# most captions share, so the trigger absorbs them.
_TRAIT = re.compile(
    r"^(?:[\w-]+ )*(?:hair|eyes|pupils|eyebrows|eyelashes|skin|ears|tail|horns|wings|halo|"
    r"eyewear|glasses|ponytail|twintails|braids?|bangs|sidelocks|ahoge|hairband|hairclip|"
    r"hair ornament|hair ribbon|hair bow|mole(?: under (?:eye|mouth))?|freckles|earrings|"
    r"beard|mustache|stubble|facial hair|scar(?: on face| across eye)?|fangs?|breasts|"
    r"dark skin|tan|muscular(?: male| female)?)$"
)
# At least this share of the images, in percent, by default.
TRAIT_SHARE = 50


@dataclass(frozen=True)
class TagRow:
    tag: str
    images: int
    share: float  # 0..1 of the captioned images


@dataclass
class TagStats:
    """What the captions of one folder say, tag by tag."""

    folder: Path
    captions: int
    uncaptioned: list[str]
    rows: list[TagRow]
    trigger: Trigger | None
    # Where the trigger's first token stands: {"first": n, "later": n, "missing": n}.
    trigger_position: dict[str, int] = field(default_factory=dict)
    trigger_only: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "captions": self.captions,
            "uncaptioned": self.uncaptioned,
            "trigger": self.trigger.text if self.trigger else None,
            "trigger_position": self.trigger_position,
            "trigger_only": self.trigger_only,
            "unreadable": self.unreadable,
            "tags": [{"tag": r.tag, "images": r.images, "share": r.share} for r in self.rows],
        }


def is_trait(tag: str) -> bool:
    """True for a tag that describes the character (hair, eyes, fixed accessories...)."""
    return bool(_TRAIT.match(tag.replace("_", " ").casefold()))


def read_captions(folder: Path, ext: str = ".txt") -> tuple[dict[str, str], list[str]]:
    """{caption file name: text} of every image's caption file, and the uncaptioned images.

    One directory listing and one open per caption (no stat per file, no Path objects):
    10,000 captions read in a fraction of a second."""
    require_folder(folder)
    with os.scandir(folder) as it:
        names = {e.name for e in it if not e.name.startswith(".")}
    images = sorted((n for n in names if is_image_name(n)), key=natural_key)
    texts: dict[str, str] = {}
    missing: list[str] = []
    for name in images:
        caption = name.rsplit(".", 1)[0] + ext
        if caption not in names:
            missing.append(name)
            continue
        try:
            with open(os.path.join(folder, caption), "rb") as fh:
                texts[caption] = fh.read().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            texts[caption] = "\x00"  # counted as unreadable below
    if not images:
        raise DatasetError(f"No images in {os.path.abspath(folder)}.", IMAGES_HINT)
    return texts, missing


def count_tags(
    folder: Path, texts: Mapping[str, str], missing: list[str], trigger: Trigger | None
) -> TagStats:
    """The frequency table and the trigger's facts (pure)."""
    lists: dict[str, list[str]] = {}
    unreadable = []
    for name, text in texts.items():
        try:
            lists[name] = split_tags(text)
        except CaptionError:
            unreadable.append(name)
    trig = trigger or guess_trigger_of_tags(list(lists.values()))
    counts: Counter[str] = Counter()
    for tags in lists.values():
        counts.update(dict.fromkeys(tags, 1))
    total = len(lists)
    rows = [TagRow(tag, n, n / total) for tag, n in counts.most_common()]
    position = {"first": 0, "later": 0, "missing": 0}
    only = []
    if trig is not None:
        head = trig.tokens[0].casefold()
        for name, tags in lists.items():
            folded = [t.casefold() for t in tags]
            where = "first" if folded[:1] == [head] else "later" if head in folded else "missing"
            position[where] += 1
            if tuple(tags) == trig.tokens:
                only.append(name)
    return TagStats(folder, total, missing, rows, trig, position, sorted(only), unreadable)


def tag_stats(folder: Path, trigger: Trigger | None = None, ext: str = ".txt") -> TagStats:
    """`captions --stats`: read the caption files of `folder` and count their tags."""
    texts, missing = read_captions(folder, ext)
    return count_tags(folder, texts, missing, trigger)


def trait_candidates(stats: TagStats, min_share: float = TRAIT_SHARE) -> list[TagRow]:
    """The trait tags in at least `min_share` % of the captions, commonest first."""
    tokens = {t.casefold() for t in stats.trigger.tokens} if stats.trigger else set()
    return [
        r
        for r in stats.rows
        if r.share * 100 >= min_share and is_trait(r.tag) and r.tag.casefold() not in tokens
    ]
