"""Platform length and hashtag rules, thread splitting, near-duplicate detection and the offline writer."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ainfluencer.characters.persona import DISCLOSURE_LINE, HashtagHabit, Persona
from ainfluencer.characters.templates import BUILTIN_TEMPLATES, persona_from_template
from ainfluencer.errors import InvalidInput
from ainfluencer.writing.offline import KINDS, STYLES, OfflineWriter, WritingRequest, contract, write_offline
from ainfluencer.writing.platform_rules import (
    ELLIPSIS,
    PLATFORM_RULES,
    apply_hashtags,
    fit_text,
    fits,
    graphemes,
    hashtags_in,
    normalise_hashtag,
    rules_for,
    split_thread,
    text_length,
)
from ainfluencer.writing.uniqueness import (
    DEFAULT_THRESHOLD,
    UniquenessIndex,
    is_near_duplicate,
    similarity,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAMILY = "👨‍👩‍👧"
LONG_URL = "https://example.com/" + "a" * 120


# --- limits -----------------------------------------------------------------------------------------------


def test_limits_are_data():
    expected = {
        ("x", "post"): 280,
        ("x", "thread"): 280,
        ("bluesky", "post"): 300,
        ("mastodon", "post"): 500,
        ("instagram", "caption"): 2200,
        ("telegram", "text"): 4096,
        ("telegram", "caption"): 1024,
        ("youtube", "title"): 100,
        ("youtube", "description"): 5000,
        ("facebook", "post"): 63206,
    }
    for (platform, kind), limit in expected.items():
        assert rules_for(platform, kind).max_length == limit
    assert rules_for("instagram").hashtag_hard_max == 30
    assert rules_for("youtube", "youtube_description").hashtags_shown == 3
    assert rules_for("x", "tweet").kind == "post"
    with pytest.raises(InvalidInput):
        rules_for("myspace")


def test_x_counts_urls_as_23_and_wide_characters_as_2():
    x = rules_for("x")
    assert text_length(LONG_URL, x) == 23
    assert text_length("see example.com/page now", x) == len("see  now") + 23
    assert text_length("日本語", x) == 6
    assert text_length(FAMILY, x) == 2  # one emoji sequence weighs 2
    text = "a" * 250 + " " + LONG_URL
    assert fits(text, "x") and fit_text(text, "x") == text  # 274 as X counts it, though 371 characters
    assert not fits("a" * 260 + " " + LONG_URL, "x")
    trimmed = fit_text("日本語です。" * 40, "x")
    assert text_length(trimmed, x) <= 280


def test_bluesky_counts_graphemes():
    bsky = rules_for("bluesky")
    assert text_length(FAMILY * 300, bsky) == 300
    assert fits(FAMILY * 300, "bluesky") and not fits(FAMILY * 301, "bluesky")
    out = fit_text(FAMILY * 400, "bluesky")
    clusters = graphemes(out)
    assert len(clusters) <= 300
    assert set(clusters) <= {FAMILY, ELLIPSIS}  # no emoji cut in half


def test_mastodon_telegram_youtube_counting():
    assert text_length("x " + LONG_URL, rules_for("mastodon")) == 2 + 23
    assert text_length("😀", rules_for("telegram")) == 2  # UTF-16 code units
    assert text_length("é", rules_for("youtube", "description")) == 2  # bytes
    title = fit_text("Best <b>tips</b> " * 20, "youtube", "title")
    assert "<" not in title and ">" not in title and len(title) <= 100


def test_fit_prefers_sentences_then_words():
    sentences = " ".join(f"Sentence number {i} is here." for i in range(40))
    out = fit_text(sentences, "x")
    assert out.endswith(".") and ELLIPSIS not in out and sentences.startswith(out)
    words = " ".join(f"word{i}" for i in range(200))
    out = fit_text(words, "x")
    assert out.endswith(ELLIPSIS) and len(out) <= 280
    assert (out[:-1] + " ") in words + " "  # cut on a word boundary


platform_kinds = st.sampled_from([(p, k) for p, kinds in PLATFORM_RULES.items() for k in kinds])
texts = st.lists(
    st.sampled_from([*"abc de.!?,\n", "日", "😀", FAMILY, "é", "e\u0301", " https://t.co/x "]), max_size=3000
).map("".join)


@FAST
@given(texts, platform_kinds)
def test_fit_text_always_fits_and_keeps_a_prefix(text, pk):
    platform, kind = pk
    rules = rules_for(platform, kind)
    out = fit_text(text, platform, kind)
    assert text_length(out, rules) <= rules.max_length
    assert text.strip().startswith(out.removesuffix(ELLIPSIS).rstrip())


# --- threads ----------------------------------------------------------------------------------------------


def test_split_thread_numbers_and_fits():
    text = " ".join(f"This is sentence {i}, which says something useful about habits." for i in range(30))
    posts = split_thread(text)
    n = len(posts)
    assert n > 1
    x = rules_for("x", "thread")
    for i, post in enumerate(posts, start=1):
        assert post.endswith(f" {i}/{n}")
        assert text_length(post, x) <= 280
    rebuilt = " ".join(re.sub(r" \d+/\d+$", "", p) for p in posts)
    assert rebuilt.split() == text.split()
    assert split_thread("Short and sweet.") == ["Short and sweet."]


def test_split_thread_breaks_overlong_sentences_and_words():
    text = "word " * 200 + "x" * 700
    posts = split_thread(text)
    assert all(text_length(p, rules_for("x", "thread")) <= 280 for p in posts)
    assert posts[-1].endswith(f"{len(posts)}/{len(posts)}")
    assert "".join(re.sub(r" \d+/\d+$", "", p) for p in posts).replace(" ", "") == text.replace(" ", "")


# --- hashtags ---------------------------------------------------------------------------------------------


def persona(**habit) -> Persona:
    return Persona(hashtag_habit=HashtagHabit(**habit))


def test_hashtags_dedupe_normalise_and_respect_counts():
    p = persona(min_count=0, max_count=10, style="lowercase")
    out = apply_hashtags("Great day.", ["#Food", "food", "FOOD", "street food", "Street-Food", "123"], p, "instagram")
    assert hashtags_in(out) == ["food", "streetfood"]
    out = apply_hashtags("Great day #food", ["Food", "travel"], p, "instagram")
    assert [t.lower() for t in hashtags_in(out)] == ["food", "travel"]  # the inline tag counts as present
    assert normalise_hashtag("sustainable fashion", "CamelCase") == "SustainableFashion"
    assert normalise_hashtag("#iPhone tips", "CamelCase") == "IPhoneTips"
    assert normalise_hashtag("Café Life", "lowercase") == "cafélife"


@pytest.mark.parametrize(
    "platform,kind,upper",
    [
        ("x", None, 2),
        ("instagram", None, 10),
        ("bluesky", None, 3),
        ("mastodon", None, 4),
        ("youtube", "description", 15),
        ("youtube", "title", 0),
        ("facebook", None, 3),
        ("telegram", None, 3),
    ],
)
def test_platform_hashtag_ranges(platform, kind, upper):
    p = persona(min_count=0, max_count=30)
    many = [f"tag{i}" for i in range(40)]
    out = apply_hashtags("Body text.", many, p, platform, kind)
    assert len(hashtags_in(out)) == upper


def test_persona_habit_applies():
    tags = ["one", "two", "three", "four"]
    assert hashtags_in(apply_hashtags("Hi.", tags, persona(min_count=0, max_count=0), "instagram")) == []
    out = apply_hashtags(
        "Hi.", tags, persona(min_count=1, max_count=2, style="CamelCase", signature=["MySig"]), "instagram"
    )
    assert hashtags_in(out) == ["MySig", "One"]  # signature first, then the habit's maximum
    assert out.startswith("Hi.\n\n#MySig")
    assert apply_hashtags("Hi.", ["a_b"], persona(style="as_written"), "x") == "Hi. #ab"


def test_instagram_hard_max_counts_inline_tags():
    body = " ".join(f"#inline{i}" for i in range(28))
    out = apply_hashtags(body, ["new1", "new2", "new3"], persona(min_count=0, max_count=10), "instagram")
    assert len(hashtags_in(out)) == 30


def test_hashtags_never_break_the_limit():
    p = persona(min_count=2, max_count=2, signature=["Signature"])
    body = "word " * 60  # 300 characters
    out = apply_hashtags(body, ["second"], p, "x")
    assert text_length(out, rules_for("x")) <= 280
    assert hashtags_in(out) == ["signature", "second"]


# --- uniqueness -------------------------------------------------------------------------------------------

CAPTION = (
    "Golden hour at the night market today! The light bounced off every lantern and I stayed far longer "
    "than planned. Tip: underexpose a little to keep the colours rich. What would you shoot first?"
)


def test_light_edit_is_flagged():
    edited = CAPTION.replace("today", "tonight").replace("far longer", "much longer").replace("rich", "deep")
    dup, score, matched = is_near_duplicate(edited, ["Unrelated post about bread.", CAPTION])
    assert dup and score >= DEFAULT_THRESHOLD and matched == CAPTION
    reordered = "Tip: underexpose a little to keep the colours rich. " + CAPTION.split(" Tip:")[0] + " #newtag 📷"
    assert is_near_duplicate(reordered, [CAPTION])[0]
    assert is_near_duplicate(CAPTION.upper(), [CAPTION]) == (True, 1.0, CAPTION)


def test_unrelated_text_is_not_flagged():
    other = (
        "Sourdough day: my starter finally doubled in six hours. Stretch and fold every thirty minutes, "
        "then a long cold proof overnight. Who else bakes on Sundays?"
    )
    dup, score, _ = is_near_duplicate(other, [CAPTION])
    assert not dup and score < 0.1
    assert is_near_duplicate("anything", []) == (False, 0.0, None)
    assert similarity("", "") == 1.0


def test_threshold_is_a_parameter():
    edited = CAPTION.replace("today", "tonight")
    assert is_near_duplicate(edited, [CAPTION], threshold=0.99)[0] is False
    assert is_near_duplicate(edited, [CAPTION], threshold=0.5)[0] is True


# --- offline writer ---------------------------------------------------------------------------------------


def near_duplicate_rate(texts: list[str]) -> float:
    index = UniquenessIndex()
    dups = 0
    for t in texts:
        dups += index.check(t).duplicate
        index.add(t)
    return dups / len(texts)


def test_200_captions_are_almost_never_near_duplicates():
    p = persona_from_template("fitness-coach")
    captions = [write_offline(p, "caption", seed=s) for s in range(200)]
    assert len(set(captions)) == 200
    assert near_duplicate_rate(captions) < 0.02


@pytest.mark.parametrize("slug", list(BUILTIN_TEMPLATES))
def test_every_template_writes_varied_captions(slug):
    p = BUILTIN_TEMPLATES[slug].persona
    assert near_duplicate_rate([write_offline(p, "caption", seed=s) for s in range(120)]) < 0.02


LIMITS = {
    "caption": ("instagram", "caption"),
    "tweet": ("x", "post"),
    "youtube_title": ("youtube", "title"),
    "youtube_description": ("youtube", "description"),
    "telegram_post": ("telegram", "text"),
    "reply": ("mastodon", "post"),
}
HUMAN_CLAIM = re.compile(r"\bI(?:'m| am) (?:a )?(?:real )?(?:human|person)\b|\bas a human\b", re.IGNORECASE)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_and_style_fits_and_reads_well(kind, style):
    p = persona_from_template("language-teacher")
    for seed in range(6):
        text = write_offline(p, kind, style=style, brief="false friends", seed=seed, comment="Love this, thanks!")
        assert text.strip() and "{" not in text and "}" not in text and "  " not in text
        assert not re.search(r"\s[.,!?]", text.replace(" ?", "?"))
        assert not re.search(r"\ba [aeio]", text)  # articles fixed
        assert not HUMAN_CLAIM.search(text)
        if kind == "thread":
            posts = text.split("\n\n")
            n = len(posts)
            for i, post in enumerate(posts, start=1):
                assert post.endswith(f" {i}/{n}") and text_length(post, rules_for("x", "thread")) <= 280
            continue
        platform, pkind = LIMITS[kind]
        rules = rules_for(platform, pkind)
        assert text_length(text, rules) <= rules.max_length
        tags = [t.casefold() for t in hashtags_in(text)]
        assert len(tags) == len(set(tags)) <= rules.hashtag_range[1]
        if kind == "youtube_description":
            assert DISCLOSURE_LINE in text and "In this video:" in text


def test_tweets_and_other_platforms():
    p = persona_from_template("tech-reviewer")
    for seed in range(20):
        assert fits(write_offline(p, "tweet", seed=seed), "x")
        bsky = write_offline(p, "caption", platform="bluesky", seed=seed)
        assert fits(bsky, "bluesky") and len(hashtags_in(bsky)) <= 3


@pytest.mark.parametrize("comment", ["Are you a real person?", "wait, is this AI??", "r u a bot", "Are you human?"])
def test_reply_is_honest_about_being_virtual(comment):
    p = persona_from_template("home-chef")
    for seed in range(5):
        reply = write_offline(p, "reply", comment=comment, seed=seed)
        assert "virtual character" in reply or "not a human" in reply
        assert not HUMAN_CLAIM.search(reply)


def test_reply_moods():
    p = persona_from_template("home-chef")
    taboo = write_offline(p, "reply", comment="What do you think about raw-milk health claims?", seed=1)
    assert "raw-milk health claims" in taboo
    question = write_offline(p, "reply", comment="how long do I rest the dough?", seed=2)
    assert any(w in question.lower() for w in ("question", "asking"))
    critical = write_offline(p, "reply", comment="This recipe is boring", seed=3)
    assert any(w in critical.lower() for w in ("fair", "hear you", "feedback", "criticism"))


def test_write_unique_regenerates_until_fresh():
    writer = OfflineWriter(persona_from_template("illustrator"))
    request = WritingRequest(kind="caption")
    first = writer.write(request, seed=1)
    text, check = writer.write_unique(request, [first], seed=1)
    assert text != first and not check.duplicate


def test_request_prompt_round_trip():
    req = WritingRequest(kind="reply", style="question", brief="b", platform="x", comment="Nice!")
    assert WritingRequest.from_prompt(req.to_prompt()) == req
    assert WritingRequest.from_prompt("just some words").brief == "just some words"
    assert WritingRequest.from_prompt("Kind: sonnet\nStyle: weird").kind == "caption"


def test_contractions():
    assert contract("I am sure it is fine, and I do not mind.") == "I'm sure it's fine, and I don't mind."
    assert contract("That is what it is.") == "That's what it is."
    assert contract("Let us go") == "Let's go"


def test_brief_is_used():
    p = persona_from_template("travel-photographer")
    texts = [write_offline(p, "caption", brief="Kyoto in the rain", seed=s) for s in range(10)]
    assert sum("Kyoto in the rain" in t for t in texts) >= 8
    long_brief = "I finally visited the Kyoto flower market at dawn and it was worth the early alarm."
    assert long_brief in write_offline(p, "caption", brief=long_brief, seed=3)
