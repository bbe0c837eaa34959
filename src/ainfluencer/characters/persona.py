"""The persona: how a character thinks and speaks, as a versioned JSON document.

Schema history (``schema_version``):
    1  first version (traits, voice, habits, rules, profile fields)

A newer schema adds a function to ``_MIGRATIONS`` that turns a version-N dict into version N+1;
``import_persona_json`` applies them in order, so files exported by any older release still import.

Emoji habit levels (``emoji_habit``):
    none   never any emoji, whatever the traits say
    light  at most one emoji in a short post, two in a long one
    heavy  two to four emoji in a short post, more in a long one
Playfulness and humour move the count inside the level's range; they never leave it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import langcodes
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ainfluencer.errors import InvalidInput
from ainfluencer.writing.disclosure import SYSTEM_RULE as DISCLOSURE_RULE

CURRENT_SCHEMA_VERSION = 1
MAX_IMPORT_BYTES = 256 * 1024
DISCLOSURE_LINE = "Virtual character · AI-generated content"

TRAIT_NAMES: tuple[str, ...] = (
    "warmth",
    "humour",
    "formality",
    "energy",
    "curiosity",
    "confidence",
    "playfulness",
)
EmojiHabit = Literal["none", "light", "heavy"]
HashtagStyle = Literal["lowercase", "CamelCase", "as_written"]
_HASHTAG_RE = re.compile(r"^\w+$")

TraitValue = Annotated[float, Field(strict=True, description="0.0 (none) to 1.0 (very strong)")]
ShortText = Annotated[str, Field(max_length=200)]


def _clean_list(values: list[str], *, max_len: int, what: str) -> list[str]:
    """Strip items, drop empty ones and case-insensitive repeats, enforce the item length."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in values:
        item = raw.strip()
        if not item:
            continue
        if len(item) > max_len:
            raise ValueError(f"each {what} must be at most {max_len} characters (got {len(item)}: {item[:30]!r}…)")
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


class Traits(BaseModel):
    """Personality sliders, each from 0.0 to 1.0."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    warmth: TraitValue = 0.5
    humour: TraitValue = 0.5
    formality: TraitValue = 0.5
    energy: TraitValue = 0.5
    curiosity: TraitValue = 0.5
    confidence: TraitValue = 0.5
    playfulness: TraitValue = 0.5

    @field_validator(*TRAIT_NAMES)
    @classmethod
    def _in_range(cls, value: float, info: Any) -> float:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"trait {info.field_name!r} must be between 0.0 and 1.0 (got {value})")
        return value


class HashtagHabit(BaseModel):
    """How many hashtags the character uses, how it writes them, and which it always adds."""

    model_config = ConfigDict(extra="forbid")

    min_count: int = Field(default=1, ge=0, le=30)
    max_count: int = Field(default=3, ge=0, le=30)
    style: HashtagStyle = "lowercase"
    signature: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("signature")
    @classmethod
    def _tags(cls, values: list[str]) -> list[str]:
        cleaned = _clean_list([v.strip().lstrip("#") for v in values], max_len=100, what="signature hashtag")
        for tag in cleaned:
            if not _HASHTAG_RE.match(tag) or tag.isdigit():
                raise ValueError(f"signature hashtag {tag!r} may hold only letters, digits and _ (not only digits)")
        return cleaned

    @model_validator(mode="after")
    def _range(self) -> HashtagHabit:
        if self.min_count > self.max_count:
            raise ValueError(f"min_count ({self.min_count}) must not exceed max_count ({self.max_count})")
        return self


class Persona(BaseModel):
    """Everything that shapes what a character says (versioned; see the module docstring)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, validate_assignment=True)

    schema_version: int = CURRENT_SCHEMA_VERSION
    traits: Traits = Field(default_factory=Traits)
    tone_of_voice: str = Field(default="", max_length=500)
    topics: list[str] = Field(default_factory=list, max_length=30)
    taboo_topics: list[str] = Field(default_factory=list, max_length=30)
    do_rules: list[str] = Field(default_factory=list, max_length=30)
    dont_rules: list[str] = Field(default_factory=list, max_length=30)
    emoji_habit: EmojiHabit = "light"
    emoji_palette: list[str] = Field(default_factory=list, max_length=20)
    hashtag_habit: HashtagHabit = Field(default_factory=HashtagHabit)
    signature_phrases: list[str] = Field(default_factory=list, max_length=20)
    target_audience: str = Field(default="", max_length=300)
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1, max_length=10)
    bio: str = Field(default="", max_length=1000)
    age: int | None = Field(default=None, ge=18, le=120)
    location: str = Field(default="", max_length=120)
    interests: list[str] = Field(default_factory=list, max_length=30)
    style: str = Field(default="", max_length=300)

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != CURRENT_SCHEMA_VERSION:
            raise ValueError(f"schema_version must be {CURRENT_SCHEMA_VERSION} (got {value}); import older files")
        return value

    @field_validator("topics", "taboo_topics", "interests")
    @classmethod
    def _short_items(cls, values: list[str], info: Any) -> list[str]:
        return _clean_list(values, max_len=80, what=info.field_name.rstrip("s").replace("_", " "))

    @field_validator("do_rules", "dont_rules", "signature_phrases")
    @classmethod
    def _long_items(cls, values: list[str], info: Any) -> list[str]:
        return _clean_list(values, max_len=200, what=info.field_name.rstrip("s").replace("_", " "))

    @field_validator("emoji_palette")
    @classmethod
    def _emoji(cls, values: list[str]) -> list[str]:
        cleaned = _clean_list(values, max_len=16, what="emoji")
        for item in cleaned:
            if any(ch.isalnum() or ch.isspace() for ch in item):
                raise ValueError(f"emoji_palette holds emoji only; {item!r} has letters, digits or spaces")
        return cleaned

    @field_validator("languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for raw in values:
            tag = raw.strip().replace("_", "-")
            if not tag or not langcodes.tag_is_valid(tag):
                raise ValueError(f"{raw!r} is not a BCP-47 language tag (examples: en, en-GB, pt-BR, zh-Hant)")
            std = langcodes.standardize_tag(tag)
            if std not in out:
                out.append(std)
        return out


# version N dict -> version N+1 dict; empty while only version 1 exists
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _line_of(text: str, key: str) -> int | None:
    """The first line of ``text`` that holds the JSON key ``key`` (for error messages)."""
    needle = f'"{key}"'
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def invalid_from_validation(err: ValidationError, *, source: str | None = None) -> InvalidInput:
    """Turn a pydantic error into one InvalidInput whose message names each bad field (and line)."""
    parts: list[str] = []
    first_field: str | None = None
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "persona"
        first_field = first_field or loc
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown field (persona schema v{CURRENT_SCHEMA_VERSION} has no {str(e['loc'][-1])!r})"
        elif e["type"] in {"float_type", "float_parsing"} and len(e["loc"]) == 2 and e["loc"][0] == "traits":
            msg = f"trait {e['loc'][1]!r} must be a number between 0.0 and 1.0 (got {e.get('input')!r})"
        elif e["type"] == "finite_number" and e["loc"][:1] == ("traits",):
            msg = f"trait {e['loc'][-1]!r} must be a number between 0.0 and 1.0 (got {e.get('input')!r})"
        line = _line_of(source, str(e["loc"][-1])) if source and e["loc"] else None
        where = f"{loc} (line {line})" if line else loc
        parts.append(f"{where}: {msg}")
    return InvalidInput("; ".join(parts), field=first_field)


def validate_persona(data: dict[str, Any]) -> Persona:
    """Build a Persona from a dict, raising InvalidInput with field-named messages."""
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc) from None


def export_persona_json(persona: Persona) -> str:
    """The persona as pretty JSON with its schema version (the file users download)."""
    return persona.model_dump_json(indent=2) + "\n"


def import_persona_json(text: str | bytes) -> Persona:
    """Read a persona JSON file (any schema version this release knows) or raise InvalidInput."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"Persona file is not UTF-8 text (byte {exc.start})", field="json") from None
    if len(text) > MAX_IMPORT_BYTES:
        raise InvalidInput(
            f"Persona file is too large ({len(text)} characters; limit {MAX_IMPORT_BYTES})", field="json"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"Persona JSON is malformed at line {exc.lineno}, column {exc.colno}: {exc.msg}", field="json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("Persona JSON must be an object ({ ... }) at the top level", field="json")
    version = data.get("schema_version")
    if version is None:
        raise InvalidInput("Persona JSON has no schema_version; it is not an exported persona", field="schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInput(f"schema_version must be a whole number (got {version!r})", field="schema_version")
    if version > CURRENT_SCHEMA_VERSION:
        raise InvalidInput(
            f"schema_version {version} was written by a newer release; this one reads up to {CURRENT_SCHEMA_VERSION}",
            field="schema_version",
        )
    if version < 1:
        raise InvalidInput(f"schema_version {version} is not a known persona schema", field="schema_version")
    while version < CURRENT_SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, source=text) from None


# --- the persona as a system prompt -------------------------------------------------------------------

_LEVELS = ((0.2, "very low"), (0.4, "low"), (0.6, "moderate"), (0.8, "high"), (1.01, "very high"))

# (low, middle, high) behaviour for each trait, in the words a model follows
_TRAIT_GUIDE: dict[str, tuple[str, str, str]] = {
    "warmth": (
        "stay cool and matter-of-fact; no gushing",
        "be friendly without fuss",
        "be warm and encouraging; greet people kindly and celebrate them",
    ),
    "humour": (
        "keep it serious; no jokes",
        "a light touch of humour now and then",
        "joke often, with gentle, self-aware humour (never at anyone's expense)",
    ),
    "formality": (
        "write casually: contractions and everyday slang are fine",
        "write in a relaxed but tidy register; contractions are fine, slang rarely",
        "write formally: full sentences, no contractions, no slang",
    ),
    "energy": (
        "calm and unhurried; full stops rather than exclamation marks",
        "upbeat but measured",
        "high energy: lively verbs and the occasional exclamation mark",
    ),
    "curiosity": (
        "state things rather than ask",
        "ask the audience a question from time to time",
        "ask questions, wonder out loud, invite people to share",
    ),
    "confidence": (
        "hedge gently (I think, maybe) and stay modest",
        "speak plainly and with quiet assurance",
        "be assertive: direct verbs, clear recommendations, no hedging",
    ),
    "playfulness": (
        "keep wording straightforward; no wordplay",
        "a little wordplay is welcome",
        "be playful: puns, wordplay and fun with emoji (within the emoji habit)",
    ),
}
_EMOJI_GUIDE = {
    "none": "never use emoji",
    "light": "at most one emoji in a short post, two in a long one",
    "heavy": "two to four emoji in a short post, more in a long one",
}
_STYLE_GUIDE = {
    "lowercase": "written in lowercase (#streetfood)",
    "CamelCase": "written in CamelCase (#StreetFood)",
    "as_written": "written as the words are spelled",
}


def trait_level(value: float) -> str:
    """A word for a trait value (very low … very high)."""
    return next(word for limit, word in _LEVELS if value < limit)


# Which behaviour each level word asks for. The behaviour follows the word people see next to the slider, so
# 0.60 ("high") never shows the "moderate" behaviour (the bands used to differ: 0.35/0.65 against 0.4/0.6).
_LEVEL_GUIDE = {"very low": 0, "low": 0, "moderate": 1, "high": 2, "very high": 2}


def trait_guidance(name: str, value: float) -> str:
    """The behaviour a trait value asks for, as one instruction."""
    return _TRAIT_GUIDE[name][_LEVEL_GUIDE[trait_level(value)]]


def trait_guides(name: str) -> tuple[str, str, str]:
    """The (low, moderate, high) behaviours of a trait, for a page that updates them while a slider moves."""
    return _TRAIT_GUIDE[name]


def _bullets(items: list[str], empty: str = "(none given)") -> str:
    return "\n".join(f"- {item}" for item in items) if items else f"- {empty}"


def persona_system_prompt(persona: Persona, *, character_name: str, handle: str) -> str:
    """The persona as a plain-text system prompt (every field included) for any chat model."""
    p = persona
    handle = handle.lstrip("@")
    habit = p.hashtag_habit
    age = f"{p.age} (the character's stated age)" if p.age is not None else "(not stated)"
    trait_lines = "\n".join(
        f"- {name} {getattr(p.traits, name):.2f} ({trait_level(getattr(p.traits, name))}): "
        f"{trait_guidance(name, getattr(p.traits, name))}"
        for name in TRAIT_NAMES
    )
    signature_tags = ", ".join(f"#{t}" for t in habit.signature) or "(none)"
    palette = f" Favourite emoji: {' '.join(p.emoji_palette)}." if p.emoji_palette else ""
    phrases = _bullets([f'"{s}"' for s in p.signature_phrases])
    return f"""You are {character_name} (@{handle}), an openly virtual influencer character.
You are not a human and never claim or imply to be one. {DISCLOSURE_RULE}
Stay in this persona's voice in every reply.

PROFILE
- Bio: {p.bio or "(none)"}
- Age: {age}
- Location: {p.location or "(not stated)"}
- Interests: {", ".join(p.interests) or "(none given)"}
- Style: {p.style or "(not stated)"}
- Target audience: {p.target_audience or "(general)"}
- Languages (BCP-47): {", ".join(p.languages)}; write in {p.languages[0]} unless the request names another

VOICE
- Tone of voice: {p.tone_of_voice or "(not specified)"}
Traits, 0.00 = none, 1.00 = very strong:
{trait_lines}
- Emoji habit: {p.emoji_habit}: {_EMOJI_GUIDE[p.emoji_habit]}.{palette}
- Hashtag habit: {habit.min_count} to {habit.max_count} hashtags, style {habit.style} \
({_STYLE_GUIDE[habit.style]}); \
signature hashtags: {signature_tags}
Signature phrases (use one now and then, never several at once):
{phrases}

TOPICS
{_bullets(p.topics)}
TABOO: never write about these, and steer away politely if asked:
{_bullets(p.taboo_topics)}

DO
{_bullets(p.do_rules)}
DON'T
{_bullets(p.dont_rules)}
- Never claim to be human; never deny being a virtual character.

Persona schema version: {p.schema_version}
"""


def bio_with_disclosure(bio: str, *, enabled: bool = True) -> str:
    """The public bio with the virtual-character disclosure line (added once; kept off only when disabled)."""
    text = bio.strip()
    if not enabled or DISCLOSURE_LINE.casefold() in text.casefold():
        return text
    return f"{text}\n{DISCLOSURE_LINE}" if text else DISCLOSURE_LINE
