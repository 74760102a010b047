"""dataset/tagstats.py and dataset/tagedit.py: counting tags, traits, the edits (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kohya_orchestrator.dataset.captions import parse_trigger
from kohya_orchestrator.dataset.tagedit import edit
from kohya_orchestrator.dataset.tagstats import count_tags, is_trait, trait_candidates
from kohya_orchestrator.errors import InputError

P = Path("x.png")


def test_count_tags_and_trigger() -> None:
    texts = {
        "a.txt": "hero, glasses, smile",
        "b.txt": "glasses, hero",
        "c.txt": "hero",
        "d.txt": "smile",
    }
    stats = count_tags(Path("x"), texts, ["e.png"], parse_trigger("hero"))
    assert [(r.tag, r.images) for r in stats.rows] == [("hero", 3), ("glasses", 2), ("smile", 2)]
    assert stats.trigger_position == {"first": 2, "later": 1, "missing": 1}
    assert stats.trigger_only == ["c.txt"]
    assert stats.uncaptioned == ["e.png"]
    assert [r.tag for r in trait_candidates(stats)] == ["glasses"]


def test_traits() -> None:
    for tag in (
        "black hair",
        "black_hair",
        "blue eyes",
        "glasses",
        "black-framed eyewear",
        "mole under eye",
        "ponytail",
        "animal ears",
    ):
        assert is_trait(tag), tag
    for tag in ("smile", "suit", "outdoors", "1boy"):
        assert not is_trait(tag), tag


def test_edits() -> None:
    assert edit("add", ["glasses, smile"])(P, ["hero", "Smile"]) == ["hero", "Smile", "glasses"]
    assert edit("remove", ["SMILE"])(P, ["hero", "smile", "suit"]) == ["hero", "suit"]
    assert edit("replace", ["black_hair", "black hair"])(P, ["black_hair", "black hair"]) == [
        "black hair"
    ]
    assert edit("first", ["suit", "absent"])(P, ["hero", "smile", "suit"]) == [
        "suit",
        "hero",
        "smile",
    ]
    with pytest.raises(InputError) as err:
        edit("replace", ["a"])
    assert err.value.render() == (
        "tags replace takes two tags, OLD and NEW; got 1.\n"
        '  hint: e.g. kohya-orch tags DIR replace "black_hair" "black hair"'
    )
    with pytest.raises(InputError):
        edit("add", [" , "])
