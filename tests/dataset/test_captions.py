"""Caption text rules: normalising, trigger first exactly once, keep_tokens, guessing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kohya_orchestrator.dataset.captions import (
    Trigger,
    caption_with_trigger,
    check_caption_text,
    guess_trigger,
    normalise_caption,
    parse_trigger,
    put_trigger_first,
    split_tags,
    starts_with_trigger,
)
from kohya_orchestrator.errors import CaptionError, InputError

ONE = parse_trigger("yumoto_hakone")
FOUR = parse_trigger("takeru_higa, takeru higa, takeru, higa")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("glasses, black hair", "glasses, black hair"),
        ("glasses,black hair", "glasses, black hair"),
        ("  glasses ,  black   hair  ", "glasses, black hair"),
        ("glasses,, ,black hair,", "glasses, black hair"),
        (",,,", ""),
        ("", ""),
        ("glasses\tblack hair", "glasses black hair"),
        ("glasses,\r\nblack hair\r\n", "glasses, black hair"),
        ("glasses\rblack hair", "glasses, black hair"),
        ("glasses\n\n\nblack hair\n", "glasses, black hair"),
        ("\ufeffglasses, suit", "glasses, suit"),
        ("(glasses:1.2), [suit], {a|b}", "(glasses:1.2), [suit], {a|b}"),
        ("Glasses, glasses", "Glasses, glasses"),
        ("眼鏡,　黒髪　短髪 ,スーツ", "眼鏡, 黒髪 短髪, スーツ"),
        ("👓 glasses, 🧑‍💼", "👓 glasses, 🧑‍💼"),
        ("a\u00a0b", "a b"),
        ("fixed ||| flex, tags", "fixed ||| flex, tags"),
    ],
)
def test_normalise_caption(raw: str, expected: str) -> None:
    assert normalise_caption(raw) == expected


def test_split_tags_keeps_order_and_duplicates() -> None:
    assert split_tags("c, a, b, a") == ["c", "a", "b", "a"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("glasses\x00", "caption contains the control character U+0000 (NUL) at character 8"),
        ("a\x07b", "caption contains the control character U+0007 (BEL) at character 2"),
        ("a\x1b[31m", "caption contains the control character U+001B (ESC) at character 2"),
        ("a\x7f", "caption contains the control character U+007F (DEL) at character 2"),
        (
            "a\x85",
            "caption contains the control character U+0085 (control character) at character 2",
        ),
        (
            "a\ud800",
            "caption contains the control character U+D800 (lone surrogate) at character 2",
        ),
    ],
)
def test_control_characters_refused(raw: str, message: str) -> None:
    with pytest.raises(CaptionError) as info:
        split_tags(raw)
    assert info.value.message == message
    assert info.value.hint == (
        "Remove it from the caption; only printable text, tabs and line breaks are allowed."
    )


def test_format_characters_allowed() -> None:
    # Zero-width joiners build emoji sequences; they are not control characters.
    check_caption_text("👩\u200d💻, e\u0301")


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("yumoto_hakone", ("yumoto_hakone",)),
        ("  yumoto_hakone ", ("yumoto_hakone",)),
        (
            "takeru_higa, takeru higa, takeru, higa",
            ("takeru_higa", "takeru higa", "takeru", "higa"),
        ),
        ("takeru_higa,takeru  higa,,", ("takeru_higa", "takeru higa")),
        ("湯本 箱根", ("湯本 箱根",)),
        ("🦊", ("🦊",)),
    ],
)
def test_parse_trigger(raw: str, tokens: tuple[str, ...]) -> None:
    trigger = parse_trigger(raw)
    assert trigger.tokens == tokens
    assert trigger.keep_tokens == len(tokens)
    assert trigger.text == ", ".join(tokens)
    assert str(trigger) == trigger.text


@pytest.mark.parametrize(
    ("raw", "message", "hint"),
    [
        (
            "",
            "The trigger '' is empty.",
            "Give the word the LoRA learns, e.g. 'yumoto_hakone'; several tokens may be "
            "comma-separated.",
        ),
        (
            " , ,",
            "The trigger ' , ,' is empty.",
            "Give the word the LoRA learns, e.g. 'yumoto_hakone'; several tokens may be "
            "comma-separated.",
        ),
        (
            "a\nb",
            "The trigger 'a\\nb' contains a line break.",
            "Give the trigger on one line, e.g. 'yumoto_hakone' or 'takeru_higa, takeru'.",
        ),
        (
            "a\rb",
            "The trigger 'a\\rb' contains a line break.",
            "Give the trigger on one line, e.g. 'yumoto_hakone' or 'takeru_higa, takeru'.",
        ),
        (
            "a\x00",
            "The trigger 'a\\x00' contains the control character U+0000 (NUL).",
            "Use printable characters only.",
        ),
    ],
)
def test_bad_trigger(raw: str, message: str, hint: str) -> None:
    with pytest.raises(InputError) as info:
        parse_trigger(raw)
    assert info.value.message == message
    assert info.value.hint == hint


@pytest.mark.parametrize(
    ("trigger", "caption", "expected"),
    [
        (ONE, "", "yumoto_hakone"),
        (ONE, "glasses, suit", "yumoto_hakone, glasses, suit"),
        (ONE, "yumoto_hakone, glasses", "yumoto_hakone, glasses"),
        (ONE, "yumoto_hakone,glasses ,,", "yumoto_hakone, glasses"),
        (ONE, "glasses, yumoto_hakone, suit", "yumoto_hakone, glasses, suit"),
        (ONE, "glasses, suit, yumoto_hakone", "yumoto_hakone, glasses, suit"),
        (ONE, "glasses, yumoto_hakone, yumoto_hakone", "yumoto_hakone, glasses"),
        (ONE, "Yumoto_Hakone, glasses", "yumoto_hakone, glasses"),
        (ONE, "glasses, YUMOTO_HAKONE", "yumoto_hakone, glasses"),
        # Only whole tags match.
        (ONE, "yumoto_hakone smiling, glasses", "yumoto_hakone, yumoto_hakone smiling, glasses"),
        (ONE, "yumoto hakone, glasses", "yumoto_hakone, yumoto hakone, glasses"),
        # A caption already starting with the trigger is left alone, later copies included.
        (ONE, "yumoto_hakone, glasses, yumoto_hakone", "yumoto_hakone, glasses, yumoto_hakone"),
        (FOUR, "smile", "takeru_higa, takeru higa, takeru, higa, smile"),
        (
            FOUR,
            "takeru_higa, takeru higa, takeru, higa, smile",
            "takeru_higa, takeru higa, takeru, higa, smile",
        ),
        (
            FOUR,
            "smile, takeru_higa, takeru higa, takeru, higa",
            "takeru_higa, takeru higa, takeru, higa, smile",
        ),
        (
            FOUR,
            "takeru, smile, takeru_higa",
            "takeru_higa, takeru higa, takeru, higa, smile",
        ),
        (
            FOUR,
            "higa, takeru, takeru higa, takeru_higa, smile",
            "takeru_higa, takeru higa, takeru, higa, smile",
        ),
        (
            FOUR,
            "takeru_higa, smile, takeru higa",
            "takeru_higa, takeru higa, takeru, higa, smile",
        ),
        (
            parse_trigger("湯本箱根, 湯本"),
            "眼鏡, 湯本, スーツ",
            "湯本箱根, 湯本, 眼鏡, スーツ",
        ),
        (parse_trigger("🦊"), "smile 😀, 🦊", "🦊, smile 😀"),
    ],
)
def test_caption_with_trigger(trigger: Trigger, caption: str, expected: str) -> None:
    result = caption_with_trigger(caption, trigger)
    assert result == expected
    assert starts_with_trigger(split_tags(result), trigger)
    # Applying it again changes nothing.
    assert caption_with_trigger(result, trigger) == result


def test_put_trigger_first_on_tags() -> None:
    assert put_trigger_first(["a", "yumoto_hakone"], ONE) == ["yumoto_hakone", "a"]
    assert put_trigger_first([], FOUR) == list(FOUR.tokens)


def test_starts_with_trigger_is_exact() -> None:
    assert starts_with_trigger(["yumoto_hakone", "x"], ONE)
    assert not starts_with_trigger(["Yumoto_hakone", "x"], ONE)
    assert not starts_with_trigger(["takeru_higa", "takeru higa", "takeru"], FOUR)
    assert not starts_with_trigger([], ONE)


_tag = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=","),
    max_size=12,
)
_caption = st.lists(_tag, max_size=8).map(lambda tags: ",".join(tags))
_trigger = st.lists(
    st.text(alphabet="abcXYZ _湯🦊", min_size=1, max_size=6), min_size=1, max_size=4
).filter(lambda toks: any(t.strip() for t in toks))


@settings(deadline=None, max_examples=300)
@given(_caption, _trigger)
def test_trigger_first_exactly_once(caption: str, tokens: list[str]) -> None:
    trigger = parse_trigger(",".join(tokens))
    result = caption_with_trigger(caption, trigger)
    tags = split_tags(result)
    assert tuple(tags[: trigger.keep_tokens]) == trigger.tokens
    assert caption_with_trigger(result, trigger) == result
    assert normalise_caption(result) == result
    assert "\n" not in result and ",," not in result
    original = split_tags(caption)
    if not starts_with_trigger(original, trigger):
        folded = {t.casefold() for t in trigger.tokens}
        assert not any(t.casefold() in folded for t in tags[trigger.keep_tokens :])
        # Tags that are not the trigger's keep their order.
        assert tags[trigger.keep_tokens :] == [t for t in original if t.casefold() not in folded]


@pytest.mark.parametrize(
    ("captions", "expected"),
    [
        ([], None),
        (["", "  "], None),
        (["yumoto_hakone, glasses", "yumoto_hakone, suit"], ("yumoto_hakone",)),
        (["yumoto_hakone, glasses", "yumoto_hakone, suit", "suit"], ("yumoto_hakone",)),
        (["a, b", "c, d"], None),
        (["a, x", "b, y", "c, z"], None),
        (["a, b, c", "a, b, d", "a, b", "a, x"], ("a",)),
        (["a, b, c", "a, b, d", "a, b, e"], ("a", "b")),
        (["a, b", "a, b", "a"], ("a",)),
        (["a, b", "a, b", "c, d"], ("a", "b")),
        (["a, b", "c, d", "e, f", "a, b"], None),
        (
            [
                "yumoto_hakone, 1boy, glasses, suit",
                "yumoto_hakone, 1boy, glasses, suit",
                "yumoto_hakone, glasses, smile",
            ],
            ("yumoto_hakone",),
        ),
        (
            [
                "takeru_higa, takeru higa, takeru, higa, smile",
                "takeru_higa, takeru higa, takeru, higa, suit",
                "glasses",
            ],
            ("takeru_higa", "takeru higa", "takeru", "higa"),
        ),
        (["a\x00", "b, c", "b, d"], ("b",)),
        (["solo"], ("solo",)),
    ],
)
def test_guess_trigger(captions: list[str], expected: tuple[str, ...] | None) -> None:
    guessed = guess_trigger(captions)
    assert (guessed.tokens if guessed else None) == expected
