"""The template (offline) writer's grammar: articles, hashtags from topic words, nothing invented, no stray advice."""

from __future__ import annotations

import re

import pytest

from ainfluencer.characters.persona import HashtagHabit, Persona
from ainfluencer.writing.offline import KINDS, fix_articles, topic_tags, write_offline

BRIEF = "a rainy morning market in Porto"
PERSONA = Persona(topics=["fitness", "meal prep"], interests=["running"], languages=["en"],
                  hashtag_habit=HashtagHabit(min_count=2, max_count=4))
SEEDS = range(40)

# lines that present something as a fact, a result, or what the audience said, or that are generic
# advice with nothing to do with a brief about a market
INVENTED = re.compile(r"I asked you|here'?s what you said|here is what you said|Fun fact|tested it|"
                      r"answers to your questions|my honest results|I asked for advice", re.IGNORECASE)
SELF_HELP = re.compile(r"start small|consisten|habit|progress|trust the process|future self|perfect moment|"
                       r"master the basics|one thing and do it well|start today|the basics", re.IGNORECASE)


@pytest.mark.parametrize(("text", "expected"), [
    ("It is a a rainy morning", "It is a rainy morning"),
    ("A a rainy morning", "A rainy morning"),
    ("It is an a rainy morning market", "It is a rainy morning market"),
    ("a evening walk", "an evening walk"),
    ("an big day", "a big day"),
    ("an hour and an honest answer", "an hour and an honest answer"),
    ("a unicorn, a one-off, a user", "a unicorn, a one-off, a user"),
    ("the a market", "a market"),
])
def test_article_agreement(text: str, expected: str) -> None:
    assert fix_articles(text) == expected


def test_hashtags_come_from_the_words_of_the_brief() -> None:
    assert topic_tags(BRIEF) == ["Porto", "rainy", "market"]
    for seed in SEEDS:
        text = write_offline(PERSONA, "caption", brief=BRIEF, seed=seed)
        tags = re.findall(r"#(\w+)", text)
        assert tags, text
        assert not any(len(t) > 20 for t in tags), tags  # never a whole phrase glued into one tag
        assert "rainymorningmarketinporto" not in text.casefold()


@pytest.mark.parametrize("kind", ["caption", "tweet", "telegram_post", "youtube_description"])
def test_a_brief_gets_no_invented_facts_and_no_unrelated_advice(kind: str) -> None:
    for seed in SEEDS:
        text = write_offline(PERSONA, kind, brief=BRIEF, seed=seed)  # type: ignore[arg-type]
        assert not INVENTED.search(text), text
        assert not SELF_HELP.search(text), text
        assert "an a " not in text.casefold() and " a a " not in text.casefold(), text
        assert "porto" in text.casefold()  # the text is about the brief


def test_no_kind_invents_what_the_audience_said() -> None:
    for kind in KINDS:
        for seed in SEEDS:
            comment = "Love this!" if kind == "reply" else None
            text = write_offline(PERSONA, kind, comment=comment, seed=seed)  # type: ignore[arg-type]
            assert not INVENTED.search(text), (kind, text)


def test_a_question_is_not_answered_with_generic_advice() -> None:
    for seed in SEEDS:
        text = write_offline(PERSONA, "reply", comment="How long do you cook quinoa?", seed=seed)
        assert not re.search(r"start simple|keep it simple|it depends", text, re.IGNORECASE), text


def test_a_brief_title_is_the_subject_not_a_made_up_story() -> None:
    assert write_offline(PERSONA, "youtube_title", brief=BRIEF, seed=1).startswith("A rainy morning market in Porto")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_writes_from_a_long_brief_sentence(kind: str) -> None:
    brief = "We spent the whole afternoon at the flower market by the river and it rained twice."
    for seed in range(10):
        comment = "Love this!" if kind == "reply" else None
        text = write_offline(PERSONA, kind, brief=brief, comment=comment, seed=seed)  # type: ignore[arg-type]
        assert text.strip() and "None" not in text
