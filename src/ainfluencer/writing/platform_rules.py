"""The functions that trim, split and tag text to fit a platform's text rules.

The rules themselves (limit, how length is counted, hashtag customs) are declared once in each
network's package (``platforms/<name>/rules.py``, :class:`~ainfluencer.platforms.rules.TextRules`)
and counted by :mod:`ainfluencer.platforms.counting`; :data:`PLATFORM_RULES` is read from the
platform registry, so the writer, Compose, creation and the adapters share one object.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

import regex

from ainfluencer.errors import InvalidInput
from ainfluencer.platforms.counting import Counting, graphemes
from ainfluencer.platforms.registry import DEFAULT
from ainfluencer.platforms.rules import TextRules, text_length

if TYPE_CHECKING:
    from ainfluencer.characters.persona import Persona

__all__ = ["PLATFORM_RULES", "Counting", "TextRules", "graphemes", "rules_for", "text_length"]

ELLIPSIS = "…"

_GRAPHEME = regex.compile(r"\X")
_HASHTAG = regex.compile(r"(?<![\w#])#(\w+)")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*(?=\s)|\n")

PLATFORM_RULES: dict[str, dict[str, TextRules]] = {spec.name: dict(spec.rules) for spec in DEFAULT}

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
