"""Personas: validation, JSON round trip, the system prompt, and traits that visibly change the writing."""

from __future__ import annotations

import json
import re

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ainfluencer.characters import persona as persona_mod
from ainfluencer.characters.persona import (
    DISCLOSURE_LINE,
    TRAIT_NAMES,
    HashtagHabit,
    Persona,
    Traits,
    bio_with_disclosure,
    export_persona_json,
    import_persona_json,
    persona_system_prompt,
    validate_persona,
)
from ainfluencer.characters.templates import BUILTIN_TEMPLATES, get_template, persona_from_template
from ainfluencer.errors import InvalidInput
from ainfluencer.writing.offline import KINDS, STYLES, write_offline
from ainfluencer.writing.uniqueness import similarity

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SEEDS = range(8)

CONTRACTION = re.compile(
    r"\b(?:I'm|I'll|I'd|I've|you're|you'll|it's|that's|there's|here's|what's|let's|don't|doesn't|didn't|can't|"
    r"won't|wouldn't|isn't|aren't|we're|who's|couldn't|shouldn't|haven't|where's|gonna)\b",
    re.IGNORECASE,
)
SLANG = re.compile(r"\b(?:ngl|tbh|lowkey|not gonna lie|for real)\b", re.IGNORECASE)
PICTO = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")


def emoji_count(text: str) -> int:
    return sum(1 for g in regex.findall(r"\X", text) if PICTO.search(g))


# --- strategies -------------------------------------------------------------------------------------------

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
traits_st = st.builds(Traits, **{name: unit for name in TRAIT_NAMES})
# printable text without surrounding whitespace (the model strips it) and no empty items
word = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12)
phrase = st.lists(word, min_size=1, max_size=4).map(" ".join)
items = st.lists(phrase, max_size=5, unique_by=str.casefold)
tags = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC_", min_size=1, max_size=10), max_size=3, unique_by=str.casefold
)
languages = st.lists(
    st.sampled_from(["en", "en-GB", "es", "pt-BR", "zh-Hant", "de", "fr-CA", "ja"]), min_size=1, max_size=3, unique=True
)


@st.composite
def personas(draw: st.DrawFn) -> Persona:
    low = draw(st.integers(0, 5))
    return Persona(
        traits=draw(traits_st),
        tone_of_voice=draw(phrase),
        topics=draw(items),
        taboo_topics=draw(items),
        do_rules=draw(items),
        dont_rules=draw(items),
        emoji_habit=draw(st.sampled_from(["none", "light", "heavy"])),
        emoji_palette=draw(st.lists(st.sampled_from(["🔥", "🌿", "✨", "🎨", "👍🏽"]), max_size=3, unique=True)),
        hashtag_habit=HashtagHabit(
            min_count=low,
            max_count=low + draw(st.integers(0, 5)),
            style=draw(st.sampled_from(["lowercase", "CamelCase", "as_written"])),
            signature=draw(tags),
        ),
        signature_phrases=draw(items),
        target_audience=draw(phrase),
        languages=draw(languages),
        bio=draw(phrase),
        age=draw(st.none() | st.integers(18, 120)),
        location=draw(phrase),
        interests=draw(items),
        style=draw(phrase),
    )


def base_persona(traits: Traits, **changes: object) -> Persona:
    data = {
        "traits": traits,
        "topics": ["street photography", "night markets", "film cameras"],
        "interests": ["maps", "regional food"],
        "signature_phrases": ["Stay curious"],
        "emoji_habit": "heavy",
        **changes,
    }
    return Persona(**data)


def with_trait(traits: Traits, **values: float) -> Traits:
    return traits.model_copy(update=values)


# --- round trip and prompt --------------------------------------------------------------------------------


@FAST
@given(personas())
def test_export_import_round_trip(p: Persona):
    text = export_persona_json(p)
    assert json.loads(text)["schema_version"] == 1
    assert import_persona_json(text) == p
    assert import_persona_json(text.encode()) == p


def _values(p: Persona) -> list[str]:
    out: list[str] = []
    for name in Persona.model_fields:
        value = getattr(p, name)
        if name == "traits":
            out += [f"{n} {getattr(value, n):.2f}" for n in TRAIT_NAMES]
        elif name == "hashtag_habit":
            out += [f"{value.min_count} to {value.max_count} hashtags", f"style {value.style}"]
            out += [f"#{t}" for t in value.signature]
        elif isinstance(value, list):
            out += value
        elif value is not None and value != "":
            out.append(str(value))
    return out


@FAST
@given(personas())
def test_system_prompt_contains_every_field(p: Persona):
    prompt = persona_system_prompt(p, character_name="Ava Test", handle="@ava_test")
    assert "Ava Test (@ava_test)" in prompt
    assert "never claim" in prompt and "virtual character" in prompt
    for value in _values(p):
        assert value in prompt or value in prompt.lower(), value
    # every field of the schema has a place in the prompt, so a new field cannot be forgotten silently
    assert set(Persona.model_fields) == {
        "schema_version",
        "traits",
        "tone_of_voice",
        "topics",
        "taboo_topics",
        "do_rules",
        "dont_rules",
        "emoji_habit",
        "emoji_palette",
        "hashtag_habit",
        "signature_phrases",
        "target_audience",
        "languages",
        "bio",
        "age",
        "location",
        "interests",
        "style",
    }


@FAST
@given(traits_st, st.sampled_from(TRAIT_NAMES))
def test_each_trait_changes_the_prompt(traits: Traits, name: str):
    low = base_persona(with_trait(traits, **{name: 0.05}))
    high = base_persona(with_trait(traits, **{name: 0.95}))
    p_low = persona_system_prompt(low, character_name="A", handle="a")
    p_high = persona_system_prompt(high, character_name="A", handle="a")
    line_low = next(line for line in p_low.splitlines() if line.startswith(f"- {name} "))
    line_high = next(line for line in p_high.splitlines() if line.startswith(f"- {name} "))
    assert "0.05" in line_low and "very low" in line_low
    assert "0.95" in line_high and "very high" in line_high
    assert line_low.split(": ", 1)[1] != line_high.split(": ", 1)[1]  # a different instruction, not only a number


# --- traits change the offline writer ---------------------------------------------------------------------


def _texts(p: Persona, kind: str = "caption") -> list[str]:
    return [write_offline(p, kind, seed=s, comment="Nice post") for s in SEEDS]


@FAST
@given(traits_st, st.sampled_from(["caption", "tweet", "telegram_post"]))
def test_formality_controls_contractions_and_slang(traits: Traits, kind: str):
    formal = _texts(base_persona(with_trait(traits, formality=0.95)), kind)
    casual = _texts(base_persona(with_trait(traits, formality=0.05)), kind)
    assert sum(len(CONTRACTION.findall(t)) + len(SLANG.findall(t)) for t in formal) == 0
    assert sum(len(CONTRACTION.findall(t)) + len(SLANG.findall(t)) for t in casual) >= 3


@FAST
@given(traits_st, st.sampled_from(["caption", "tweet", "telegram_post"]))
def test_energy_raises_exclamations(traits: Traits, kind: str):
    calm = _texts(base_persona(with_trait(traits, energy=0.05)), kind)
    lively = _texts(base_persona(with_trait(traits, energy=0.95)), kind)
    assert sum(t.count("!") for t in lively) > 2 * max(1, sum(t.count("!") for t in calm))


@FAST
@given(traits_st)
def test_curiosity_raises_questions(traits: Traits):
    incurious = _texts(base_persona(with_trait(traits, curiosity=0.0)))
    curious = _texts(base_persona(with_trait(traits, curiosity=1.0)))
    assert sum(t.count("?") for t in curious) > sum(t.count("?") for t in incurious) + 3


@FAST
@given(traits_st, st.sampled_from(["heavy", "light"]))
def test_humour_and_playfulness_raise_emoji_within_the_habit(traits: Traits, habit: str):
    dull = _texts(base_persona(with_trait(traits, humour=0.0, playfulness=0.0), emoji_habit=habit))
    fun = _texts(base_persona(with_trait(traits, humour=1.0, playfulness=1.0), emoji_habit=habit))
    assert sum(map(emoji_count, fun)) > sum(map(emoji_count, dull))
    limit = 6 if habit == "heavy" else 2
    assert all(emoji_count(t) <= limit for t in dull + fun)


@FAST
@given(traits_st, st.sampled_from(KINDS), st.sampled_from(STYLES))
def test_emoji_habit_none_means_none(traits: Traits, kind: str, style: str):
    p = base_persona(traits, emoji_habit="none", emoji_palette=["🔥"])
    for seed in range(3):
        assert emoji_count(write_offline(p, kind, style=style, seed=seed, comment="love it")) == 0


@FAST
@given(traits_st)
def test_confidence_switches_between_assertive_and_hedged(traits: Traits):
    hedges = re.compile(
        r"\b(I think|maybe|might|may not|I could be wrong|no expert|perhaps|still learning|still figuring|"
        r"grain of salt|just one way|seems to help)\b",
        re.IGNORECASE,
    )
    unsure = [write_offline(base_persona(with_trait(traits, confidence=0.0)), "caption", seed=s) for s in range(12)]
    sure = [write_offline(base_persona(with_trait(traits, confidence=1.0)), "caption", seed=s) for s in range(12)]
    assert sum(len(hedges.findall(t)) for t in unsure) > sum(len(hedges.findall(t)) for t in sure)


def test_same_seed_same_text_other_seed_other_text():
    p = persona_from_template("travel-photographer")
    assert write_offline(p, "caption", seed=42) == write_offline(p, "caption", seed=42)
    assert write_offline(p, "caption", seed=42) != write_offline(p, "caption", seed=43)


# --- validation and import errors -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("inf"), "high", True, None])
@pytest.mark.parametrize("trait", TRAIT_NAMES)
def test_invalid_trait_values_name_the_trait(trait, bad):
    with pytest.raises(InvalidInput) as info:
        validate_persona({"traits": {trait: bad}})
    assert info.value.field == f"traits.{trait}"
    assert f"trait {trait!r}" in info.value.message
    assert "between 0.0 and 1.0" in info.value.message


@pytest.mark.parametrize(
    "text,field,words",
    [
        ('{"schema_version": 1,\n "traits": {"warmth": 0.5,\n  "energy": 7}}', "traits.energy", ["line 3", "energy"]),
        ('{"schema_version": 1, "nickname": "x"}', "nickname", ["unknown field"]),
        ('{"schema_version": 1,\n "topics": ["a",\n}', "json", ["line 3", "malformed"]),
        ("", "json", ["malformed", "line 1"]),
        ("[1, 2]", "json", ["object"]),
        ('{"traits": {}}', "schema_version", ["no schema_version"]),
        ('{"schema_version": "1"}', "schema_version", ["whole number"]),
        ('{"schema_version": 99}', "schema_version", ["newer"]),
        ('{"schema_version": 0}', "schema_version", ["not a known"]),
        ('{"schema_version": 1, "languages": ["english"]}', "languages", ["BCP-47"]),
        ('{"schema_version": 1, "languages": []}', "languages", ["at least 1"]),
        ('{"schema_version": 1, "age": 12}', "age", ["greater than or equal to 18"]),
        ('{"schema_version": 1, "emoji_habit": "lots"}', "emoji_habit", ["none", "heavy"]),
        ('{"schema_version": 1, "hashtag_habit": {"min_count": 5, "max_count": 2}}', "hashtag_habit", ["min_count"]),
        (
            '{"schema_version": 1, "hashtag_habit": {"signature": ["no spaces allowed"]}}',
            "hashtag_habit.signature",
            ["letters, digits"],
        ),
        ('{"schema_version": 1, "emoji_palette": ["ab"]}', "emoji_palette", ["emoji only"]),
        ('{"schema_version": 1, "bio": "' + "x" * 1001 + '"}', "bio", ["1000"]),
    ],
)
def test_malformed_imports_give_clear_errors(text, field, words):
    with pytest.raises(InvalidInput) as info:
        import_persona_json(text)
    assert info.value.field == field
    for w in words:
        assert w.lower() in info.value.message.lower()


def test_import_rejects_non_utf8_and_huge_files():
    with pytest.raises(InvalidInput, match="UTF-8"):
        import_persona_json(b"\xff\xfe{")
    with pytest.raises(InvalidInput, match="too large"):
        import_persona_json('{"schema_version": 1, "bio": "' + "x" * 300_000 + '"}')


def test_older_versions_are_migrated(monkeypatch):
    # pretend the current schema is 2 and version 1 called a trait "humor": the migration chain upgrades it
    def v1_to_v2(data):
        data["traits"]["humour"] = data["traits"].pop("humor")
        return data

    monkeypatch.setattr(persona_mod, "CURRENT_SCHEMA_VERSION", 2)
    monkeypatch.setitem(persona_mod._MIGRATIONS, 1, v1_to_v2)
    p = import_persona_json('{"schema_version": 1, "traits": {"humor": 0.9}}')
    assert p.traits.humour == 0.9 and p.schema_version == 2


def test_lists_are_cleaned_and_languages_standardised():
    p = Persona(topics=[" Bread ", "bread", "", "Pasta"], languages=["EN_us", "pt-br", "en-US"])
    assert p.topics == ["Bread", "Pasta"]
    assert p.languages == ["en-US", "pt-BR"]
    assert Persona(hashtag_habit={"signature": ["#MoveDaily", "movedaily"]}).hashtag_habit.signature == ["MoveDaily"]


# --- disclosure -------------------------------------------------------------------------------------------


def test_bio_disclosure():
    assert DISCLOSURE_LINE == "Virtual character · AI-generated content"
    assert bio_with_disclosure("Chef in Bologna.") == f"Chef in Bologna.\n{DISCLOSURE_LINE}"
    once = bio_with_disclosure("Chef.")
    assert bio_with_disclosure(once) == once  # added once only
    assert bio_with_disclosure("") == DISCLOSURE_LINE
    assert bio_with_disclosure("Chef.", enabled=False) == "Chef."


# --- templates --------------------------------------------------------------------------------------------


def test_templates_are_complete_and_valid():
    assert len(BUILTIN_TEMPLATES) >= 8
    for slug, info in BUILTIN_TEMPLATES.items():
        p = info.persona
        assert info.name and info.description
        assert import_persona_json(export_persona_json(p)) == p, slug
        assert len(p.topics) >= 5 and p.taboo_topics and p.do_rules and p.dont_rules, slug
        assert p.signature_phrases and p.hashtag_habit.signature and p.target_audience and p.bio, slug
        assert p.tone_of_voice and p.interests and p.style and p.location and p.age, slug
    trait_sets = {tuple(info.persona.traits.model_dump().values()) for info in BUILTIN_TEMPLATES.values()}
    assert len(trait_sets) == len(BUILTIN_TEMPLATES)
    with pytest.raises(KeyError, match="known"):
        get_template("astronaut")


def test_templates_write_distinct_text():
    captions = {slug: write_offline(info.persona, "caption", seed=7) for slug, info in BUILTIN_TEMPLATES.items()}
    slugs = list(captions)
    for i, a in enumerate(slugs):
        for b in slugs[i + 1 :]:
            assert similarity(captions[a], captions[b]) < 0.5, (a, b)
    topics = {slug: info.persona.topics for slug, info in BUILTIN_TEMPLATES.items()}
    for slug, text in captions.items():
        assert any(t.lower() in text.lower() for t in topics[slug]) or "#" in text


def test_template_copy_is_independent():
    copy = persona_from_template("home-chef")
    copy.topics = ["changed"]
    assert get_template("home-chef").persona.topics != ["changed"]


@pytest.mark.parametrize(("value", "band"), [(0.0, 0), (0.39, 0), (0.4, 1), (0.59, 1), (0.6, 2), (1.0, 2)])
def test_trait_behaviour_follows_the_level_word(value: float, band: int) -> None:
    """0.60 reads "high" next to the slider, so its behaviour is the high one (not "moderate")."""
    from ainfluencer.characters.persona import trait_guidance, trait_guides, trait_level

    assert trait_guidance("confidence", value) == trait_guides("confidence")[band]
    assert (trait_level(value) in ("high", "very high")) == (band == 2)
