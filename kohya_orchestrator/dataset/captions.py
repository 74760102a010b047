"""Caption text rules: normalising tags, putting the trigger first exactly once, keep_tokens.

A caption is a list of comma-separated tags, as sd-scripts reads it (it splits on "," and
strips each piece; `keep_tokens` counts pieces from the front, empty ones included, which
is why duplicate commas are removed here).

Normalising a caption:
- CRLF and CR become LF; a leading byte-order mark is dropped; each line is split on
  commas, so several lines become one (sd-scripts reads only the first line of a `.txt`).
- Inside a tag, runs of whitespace (spaces, tabs, ideographic spaces...) become one space,
  and the tag is stripped; empty tags (",,", trailing commas) are dropped.
- Tags are joined with ", ". Their order is kept; duplicate tags are kept too, except the
  trigger's (below). Nothing else is changed: case, underscores, brackets, weights.
- Control characters (other than tab and line breaks) and lone surrogates are refused
  with a CaptionError: they corrupt the `.txt` and most metadata readers.

The trigger is a block of one or more comma-separated tokens ("yumoto_hakone", or
"takeru_higa, takeru higa, takeru, higa"), normalised like a caption. Putting it first:
- A caption "starts with the trigger" when its first N tags are exactly the trigger's N
  tokens, in order. Such a caption is left as it is (after normalising).
- Otherwise the trigger is "found" token by token: a tag matches when it equals one of
  the trigger's tokens ignoring case (the CLIP tokenizer lowercases text anyway). Every
  matching tag is removed wherever it stands, and the whole block is put first, in the
  trigger's own spelling and order. So a trigger found later is moved to the front, a
  block found in another order or only in part is completed, and no token ever appears
  twice. Only whole tags match: "yumoto_hakone smiling" does not contain the trigger.
- `keep_tokens` (sd-scripts' count of tags kept in place when shuffling) is the number
  of the trigger's tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kohya_orchestrator.errors import CaptionError, InputError

_WHITESPACE = re.compile(r"\s+")
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"
_BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True)
class Trigger:
    """The trigger block: its normalised tokens, in order."""

    tokens: tuple[str, ...]

    @property
    def text(self) -> str:
        """The trigger as written into captions: tokens joined with ", "."""
        return ", ".join(self.tokens)

    @property
    def keep_tokens(self) -> int:
        """sd-scripts' `keep_tokens` for captions that start with this trigger."""
        return len(self.tokens)

    def __str__(self) -> str:
        return self.text


def find_bad_character(text: str) -> tuple[int, str] | None:
    """The first control character (tab and line breaks allowed) or lone surrogate, if any."""
    # Unicode's Cc is exactly U+0000-U+001F and U+007F-U+009F; Cs the surrogates. One regex
    # search instead of a category look-up per character (10,000 captions: 40x faster).
    found = _BAD_CHARACTER.search(text)
    return None if found is None else (found.start(), found.group())


def describe_character(ch: str) -> str:
    """A readable name for a character in an error message: `U+0007 (BEL)`."""
    name = _CONTROL_NAMES.get(ord(ch))
    if name is None:
        name = "lone surrogate" if 0xD800 <= ord(ch) <= 0xDFFF else "control character"
    return f"U+{ord(ch):04X} ({name})"


def check_caption_text(text: str) -> None:
    """Raise a CaptionError if `text` holds a control character or lone surrogate."""
    bad = find_bad_character(text)
    if bad is not None:
        pos, ch = bad
        raise CaptionError(
            f"caption contains the control character {describe_character(ch)} "
            f"at character {pos + 1}",
            "Remove it from the caption; only printable text, tabs and line breaks are allowed.",
        )


def split_tags(text: str) -> list[str]:
    """The normalised tags of a caption (see the module docstring); CaptionError if bad."""
    check_caption_text(text)
    if text.startswith(_BOM):
        text = text[1:]
    tags = []
    for line in _LINE_BREAKS.split(text):
        # Whitespace runs never hold a comma, so one pass over the line equals one per tag.
        for piece in _WHITESPACE.sub(" ", line).split(","):
            tag = piece.strip()
            if tag:
                tags.append(tag)
    return tags


def join_tags(tags: Iterable[str]) -> str:
    """Tags joined the way captions are written: ", " between them."""
    return ", ".join(tags)


def normalise_caption(text: str) -> str:
    """One clean line: whitespace, duplicate commas and line breaks normalised."""
    return join_tags(split_tags(text))


def parse_trigger(text: str) -> Trigger:
    """Validate and normalise a trigger given by the user; InputError if unusable."""
    if "\n" in text or "\r" in text:
        raise InputError(
            f"The trigger {text!r} contains a line break.",
            "Give the trigger on one line, e.g. 'yumoto_hakone' or 'takeru_higa, takeru'.",
        )
    bad = find_bad_character(text)
    if bad is not None:
        raise InputError(
            f"The trigger {text!r} contains the control character {describe_character(bad[1])}.",
            "Use printable characters only.",
        )
    tokens = tuple(split_tags(text))
    if not tokens:
        raise InputError(
            f"The trigger {text!r} is empty.",
            "Give the word the LoRA learns, e.g. 'yumoto_hakone'; several tokens may be "
            "comma-separated.",
        )
    return Trigger(tokens)


def starts_with_trigger(tags: Sequence[str], trigger: Trigger) -> bool:
    """True when the first tags are exactly the trigger's tokens, in order."""
    n = len(trigger.tokens)
    return tuple(tags[:n]) == trigger.tokens


def put_trigger_first(tags: Sequence[str], trigger: Trigger) -> list[str]:
    """The tags with the trigger block first, exactly once (rules in the module docstring)."""
    if starts_with_trigger(tags, trigger):
        return list(tags)
    folded = {t.casefold() for t in trigger.tokens}
    rest = [t for t in tags if t.casefold() not in folded]
    return [*trigger.tokens, *rest]


def caption_with_trigger(text: str, trigger: Trigger) -> str:
    """Normalise a caption and put the trigger first: the caption this tool writes."""
    return join_tags(put_trigger_first(split_tags(text), trigger))


def merge_tags(text: str, extra: str, *, replace: bool = False) -> tuple[str, tuple[str, ...]]:
    """`caption --tags`: the caption with the tags of `extra` it lacks added at the end
    (compared ignoring case), or with `replace` `extra` alone; and the tags that are new."""
    have = split_tags(text)
    folded = {t.casefold() for t in have}
    wanted = split_tags(extra)
    body = wanted if replace else [*have, *(t for t in wanted if t.casefold() not in folded)]
    body = list(dict.fromkeys(body))
    added = tuple(t for t in body if t.casefold() not in folded)
    return join_tags(body), added


def guess_trigger(captions: Iterable[str]) -> Trigger | None:
    """The trigger the captions seem to use, or None when they do not agree.

    The first tag is the commonest first tag, if more than half of the non-empty captions
    start with it. The block then grows one tag at a time only while every caption that
    starts with the block has the same next tag, so shared tags that some captions lack
    (such as --tags given to most images) are not mistaken for the trigger; a caption
    that is the block alone stops the growth too. Unparsable captions are ignored.
    """
    lists = []
    for text in captions:
        try:
            tags = split_tags(text)
        except CaptionError:
            continue
        if tags:
            lists.append(tags)
    return guess_trigger_of_tags(lists)


def guess_trigger_of_tags(lists: Sequence[Sequence[str]]) -> Trigger | None:
    """guess_trigger on captions already split into tags."""
    lists = [tags for tags in lists if tags]
    if not lists:
        return None
    first, count = Counter(tags[0] for tags in lists).most_common(1)[0]
    if count <= len(lists) // 2:
        return None
    sharing = [tags for tags in lists if tags[0] == first]
    block = [first]
    while all(len(tags) > len(block) for tags in sharing):
        following = {tags[len(block)] for tags in sharing}
        if len(following) != 1:
            break
        block.append(following.pop())
    return Trigger(tuple(block))


_CONTROL_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "BS",
    0x0B: "VT",
    0x0C: "FF",
    0x1B: "ESC",
    0x7F: "DEL",
}
