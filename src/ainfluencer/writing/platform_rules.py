"""Each platform's text rules as data, and the functions that trim, split and tag text to fit them.

How length is counted (``TextRules.counting``):
    chars       Unicode code points (Instagram, Facebook, YouTube titles)
    graphemes   user-perceived characters, so 👨‍👩‍👧 is one (Bluesky 300, Mastodon 500)
    utf16       UTF-16 code units, how Telegram counts message length (an emoji outside the BMP is 2)
    utf8        bytes, how the YouTube Data API limits a description (5000 bytes)
    x_weighted  twitter-text v3: code points in the Latin/punctuation ranges weigh 1, all others
                (CJK, most symbols) 2, any emoji sequence 2; text NFC-normalised first
``url_length`` (X and Mastodon: 23) replaces every URL's length, however long the URL is.

Hashtag customs: ``hashtag_range`` is what reads as natural on the platform (the writer never goes
above its upper end), ``hashtag_hard_max`` is what the platform itself enforces (Instagram refuses
more than 30; YouTube ignores every hashtag of a description that has more than 15).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import regex

from ainfluencer.errors import InvalidInput

if TYPE_CHECKING:
    from ainfluencer.characters.persona import Persona

Counting = Literal["chars", "graphemes", "utf16", "utf8", "x_weighted"]
ELLIPSIS = "…"

_GRAPHEME = regex.compile(r"\X")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>\"]+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|app|co|me|ly|gl|gg|tv|ai|info|blog|shop|link|page)\b(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
_HASHTAG = regex.compile(r"(?<![\w#])#(\w+)")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*(?=\s)|\n")
# twitter-text v3 code point ranges that weigh 1 (everything else weighs 2)
_X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


@dataclass(frozen=True)
class TextRules:
    """What one kind of text on one platform may hold, and what reads as natural there."""

    platform: str
    kind: str
    label: str
    max_length: int
    counting: Counting = "chars"
    url_length: int | None = None
    hashtag_range: tuple[int, int] = (0, 3)
    hashtag_hard_max: int | None = None
    hashtag_placement: Literal["end", "none"] = "end"
    hashtag_separator: str = "\n\n"
    hashtags_shown: int | None = None
    forbidden_chars: str = ""
    thread: bool = False


def _rules(platform: str, *rows: TextRules) -> dict[str, TextRules]:
    return {r.kind: r for r in rows if r.platform == platform}


PLATFORM_RULES: dict[str, dict[str, TextRules]] = {
    "x": _rules(
        "x",
        TextRules("x", "post", "X post", 280, "x_weighted", url_length=23, hashtag_range=(1, 2), hashtag_separator=" "),
        TextRules(
            "x",
            "thread",
            "X thread post",
            280,
            "x_weighted",
            url_length=23,
            hashtag_range=(0, 2),
            hashtag_separator=" ",
            thread=True,
        ),
    ),
    "instagram": _rules(
        "instagram",
        TextRules(
            "instagram", "caption", "Instagram caption", 2200, "chars", hashtag_range=(3, 10), hashtag_hard_max=30
        ),
    ),
    "facebook": _rules(
        "facebook", TextRules("facebook", "post", "Facebook Page post", 63206, "chars", hashtag_range=(0, 3))
    ),
    "telegram": _rules(
        "telegram",
        TextRules("telegram", "text", "Telegram message", 4096, "utf16", hashtag_range=(0, 3)),
        TextRules("telegram", "caption", "Telegram media caption", 1024, "utf16", hashtag_range=(0, 3)),
    ),
    "youtube": _rules(
        "youtube",
        TextRules(
            "youtube",
            "title",
            "YouTube title",
            100,
            "chars",
            hashtag_range=(0, 0),
            hashtag_placement="none",
            forbidden_chars="<>",
        ),
        TextRules(
            "youtube",
            "description",
            "YouTube description",
            5000,
            "utf8",
            hashtag_range=(3, 15),
            hashtag_hard_max=15,
            hashtags_shown=3,
            forbidden_chars="<>",
        ),
    ),
    "mastodon": _rules(
        "mastodon",
        TextRules("mastodon", "post", "Mastodon post", 500, "graphemes", url_length=23, hashtag_range=(1, 4)),
    ),
    "bluesky": _rules("bluesky", TextRules("bluesky", "post", "Bluesky post", 300, "graphemes", hashtag_range=(0, 3))),
}

# writer kinds and generic words -> a platform's kind
KIND_ALIASES = {
    "tweet": "post",
    "youtube_title": "title",
    "youtube_description": "description",
    "telegram_post": "text",
    "message": "text",
}


def rules_for(platform: str, kind: str | None = None) -> TextRules:
    """The rules for ``kind`` on ``platform`` (the platform's main kind when ``kind`` is None or generic)."""
    kinds = PLATFORM_RULES.get(platform)
    if kinds is None:
        raise InvalidInput(f"unknown platform {platform!r}; known: {', '.join(PLATFORM_RULES)}", field="platform")
    if kind:
        k = kind.removeprefix(f"{platform}_")
        k = KIND_ALIASES.get(k, k)
        if k in kinds:
            return kinds[k]
    return next(iter(kinds.values()))


# --- counting ---------------------------------------------------------------------------------------


def graphemes(text: str) -> list[str]:
    """Split text into user-perceived characters (extended grapheme clusters)."""
    return _GRAPHEME.findall(text)


def _x_weight(segment: str) -> int:
    total = 0
    for cluster in _GRAPHEME.findall(segment):
        if _EMOJI.search(cluster):
            total += 2
            continue
        for ch in cluster:
            cp = ord(ch)
            total += 1 if any(lo <= cp <= hi for lo, hi in _X_LIGHT_RANGES) else 2
    return total


def _count_plain(text: str, counting: Counting) -> int:
    if counting == "chars":
        return len(text)
    if counting == "graphemes":
        return len(_GRAPHEME.findall(text))
    if counting == "utf16":
        return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
    if counting == "utf8":
        return len(text.encode("utf-8"))
    return _x_weight(text)


def text_length(text: str, rules: TextRules) -> int:
    """Length of ``text`` as the platform counts it (URLs at their fixed weight where it has one)."""
    if rules.counting == "x_weighted":
        text = unicodedata.normalize("NFC", text)
    if rules.url_length is None:
        return _count_plain(text, rules.counting)
    pieces = _URL.split(text)
    return sum(_count_plain(p, rules.counting) for p in pieces) + (len(pieces) - 1) * rules.url_length


def fits(text: str, platform: str, kind: str | None = None) -> bool:
    """Whether the text is within the platform's limit."""
    rules = rules_for(platform, kind)
    return text_length(text, rules) <= rules.max_length


# --- trimming ---------------------------------------------------------------------------------------


def _boundaries(text: str) -> list[int]:
    out = [0]
    for g in _GRAPHEME.findall(text):
        out.append(out[-1] + len(g))
    return out


def _longest_prefix(text: str, bounds: list[int], rules: TextRules, budget: int, suffix: str = "") -> int:
    """The largest grapheme boundary ``b`` with ``text[:b].rstrip() + suffix`` within ``budget``."""
    lo, hi = 0, len(bounds) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_length(text[: bounds[mid]].rstrip() + suffix, rules) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return bounds[lo]


def fit_within(text: str, rules: TextRules, budget: int) -> str:
    """Trim text to ``budget`` as ``rules`` count it: a whole sentence if most fits, else words and "…"."""
    text = text.strip()
    if text_length(text, rules) <= budget:
        return text
    bounds = _boundaries(text)
    plain_end = _longest_prefix(text, bounds, rules, budget)
    # 1) a whole sentence (or line) that fits, when it keeps most of the room
    ends = [m.start() for m in _SENTENCE_END.finditer(text) if 0 < m.start() <= plain_end]
    if ends and ends[-1] >= 0.6 * plain_end:
        return text[: ends[-1]].rstrip()
    cut_end = _longest_prefix(text, bounds, rules, budget, ELLIPSIS)
    # 2) a word boundary, with an ellipsis
    spaces = [m.start() for m in re.finditer(r"\s", text[: cut_end + 1]) if 0 < m.start() <= cut_end]
    if spaces and spaces[-1] >= 0.5 * cut_end:
        head = text[: spaces[-1]].rstrip(" \t\n,;:–—-#@")
        if head:
            return head + ELLIPSIS
    # 3) a grapheme boundary (one very long word or URL)
    head = text[:cut_end].rstrip()
    return head + ELLIPSIS if head else ""


def fit_text(text: str, platform: str, kind: str | None = None) -> str:
    """Trim text to the platform's limit on a sentence or word boundary, counting as the platform does."""
    rules = rules_for(platform, kind)
    for ch in rules.forbidden_chars:
        text = text.replace(ch, "")
    return fit_within(text, rules, rules.max_length)


# --- threads ----------------------------------------------------------------------------------------


def _units(text: str, rules: TextRules, budget: int) -> list[tuple[str, bool]]:
    """Sentences (flagged when they start a paragraph), long ones broken into pieces within budget."""
    out: list[tuple[str, bool]] = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        first = True
        sentences = [s.strip() for s in re.split(r"(?<=[.!?…])\s+|\n", paragraph) if s.strip()]
        for sentence in sentences:
            while text_length(sentence, rules) > budget:
                piece = fit_within(sentence, rules, budget)
                piece = piece.removesuffix(ELLIPSIS)
                if not piece:  # a budget smaller than one grapheme; give up splitting
                    break
                out.append((piece, first))
                first = False
                sentence = sentence[len(piece) :].strip()
            if sentence:
                out.append((sentence, first))
                first = False
    return out


def split_thread(text: str, platform: str = "x", kind: str | None = "thread") -> list[str]:
    """Split long text into numbered thread posts ("… 1/4"); text that fits stays one unnumbered post."""
    rules = rules_for(platform, kind)
    text = text.strip()
    if text_length(text, rules) <= rules.max_length:
        return [text] if text else []
    posts: list[str] = []
    for width in (9, 99, 999):
        budget = rules.max_length - text_length(f" {width}/{width}", rules)
        posts = []
        current = ""
        for unit, new_paragraph in _units(text, rules, budget):
            joined = f"{current}{chr(10) * 2 if new_paragraph else ' '}{unit}" if current else unit
            if text_length(joined, rules) <= budget:
                current = joined
            else:
                posts.append(current)
                current = unit
        if current:
            posts.append(current)
        if len(posts) <= width:
            break
    n = len(posts)
    return [f"{post} {i}/{n}" for i, post in enumerate(posts, start=1)]


# --- hashtags ---------------------------------------------------------------------------------------


def hashtags_in(text: str) -> list[str]:
    """The hashtags already in a text, without the '#'."""
    return [m.group(1) for m in _HASHTAG.finditer(text)]


def normalise_hashtag(tag: str, style: str = "as_written") -> str:
    """A tag as the persona writes it: words joined, then lowercase / CamelCase / as written ('' if unusable)."""
    words = [w for w in regex.split(r"[^\w]+|_", tag.strip().lstrip("#")) if w]
    if style == "lowercase":
        out = "".join(words).lower()
    elif style == "CamelCase":
        out = "".join(w[:1].upper() + w[1:] for w in words)
    else:
        out = "".join(words)
    return "" if not out or out.isdigit() else out[:100]


def apply_hashtags(text: str, tags: list[str], persona: Persona | None, platform: str, kind: str | None = None) -> str:
    """Append deduplicated hashtags in the persona's habit, within the platform's customs and limit."""
    from ainfluencer.characters.persona import HashtagHabit

    rules = rules_for(platform, kind)
    habit = persona.hashtag_habit if persona is not None else HashtagHabit()
    body = text.rstrip()
    present = {t.casefold() for t in hashtags_in(body)}
    upper = min(habit.max_count, rules.hashtag_range[1])
    if rules.hashtag_hard_max is not None:
        upper = min(upper, rules.hashtag_hard_max - len(present))
    if rules.hashtag_placement == "none":
        upper = 0
    chosen: list[str] = []
    seen = set(present)
    for raw in [*habit.signature, *tags]:
        tag = normalise_hashtag(raw, habit.style)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            chosen.append(tag)
    chosen = chosen[: max(0, upper)]
    if not chosen:
        return fit_within(body, rules, rules.max_length)
    keep = min(len(chosen), max(habit.min_count, rules.hashtag_range[0]))

    def block(selected: list[str]) -> str:
        return rules.hashtag_separator + " ".join(f"#{t}" for t in selected)

    while len(chosen) > keep and text_length(body + block(chosen), rules) > rules.max_length:
        chosen.pop()
    if text_length(body + block(chosen), rules) <= rules.max_length:
        return body + block(chosen)
    room = rules.max_length - text_length(block(chosen), rules)
    if room >= rules.max_length // 2:
        return fit_within(body, rules, room) + block(chosen)
    return fit_within(body, rules, rules.max_length)


def with_limits(rules: TextRules, **changes: object) -> TextRules:
    """A copy of the rules with some values changed (for an account with a higher limit, e.g. X Premium)."""
    return replace(rules, **changes)  # type: ignore[arg-type]
