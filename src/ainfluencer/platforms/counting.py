r"""The shared ways networks count text length: one implementation per rule, used by every network.

    chars       Unicode code points (Instagram, Facebook, YouTube titles)
    graphemes   user-perceived characters (extended grapheme clusters, ``regex``'s ``\X``), so 👨‍👩‍👧 is
                one (Bluesky 300, Mastodon 500)
    utf16       UTF-16 code units, how Telegram counts message length (an emoji outside the BMP is 2)
    utf8        bytes, how the YouTube Data API limits a description (5000 bytes)
    x_weighted  twitter-text v3 (``config/v3.json``): NFC first; code points in the ranges below weigh 1,
                every other code point 2, an emoji sequence 2 however many code points it has, a URL 23
``url_length`` (X and Mastodon: 23) replaces every URL's length, however long the URL is.

The maintained Python port of twitter-text (``twitter-text-parser``) imports ``pkg_resources``, which
current setuptools no longer ships, so X's rule is implemented here and tested against cases taken
from twitter-text's conformance suite (``conformance/validate.yml``, WeightedTweetsCounterTest).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import regex

Counting = Literal["chars", "graphemes", "utf16", "utf8", "x_weighted"]

_GRAPHEME = regex.compile(r"\X")
# a keycap sequence (1⃣) is an emoji although its first code point is an ASCII digit
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")
_DIRECTIONAL = "\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks around a link are not part of it
URL = re.compile(
    rf"(?:https?://|www\.)[^\s<>\"{_DIRECTIONAL}]+"
    r"|\b(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|app|co|me|ly|gl|gg|tv|ai|info|blog|shop|link|page)\b"
    rf"(?:/[^\s<>\"{_DIRECTIONAL}]*)?",
    re.IGNORECASE,
)
# twitter-text v3 ranges that weigh 1 (weight 100 of scale 100); everything else weighs 2 (default 200)
X_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
X_URL_LENGTH = 23


def graphemes(text: str) -> list[str]:
    """Split text into user-perceived characters (extended grapheme clusters)."""
    return _GRAPHEME.findall(text)


def grapheme_count(text: str) -> int:
    """Number of user-perceived characters."""
    return len(_GRAPHEME.findall(text))


def utf16_units(text: str) -> int:
    """UTF-16 code units (a character outside the Basic Multilingual Plane counts 2)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def utf8_bytes(text: str) -> int:
    """UTF-8 bytes."""
    return len(text.encode("utf-8"))


def _x_weight(segment: str) -> int:
    total = 0
    for cluster in _GRAPHEME.findall(segment):
        if _EMOJI.search(cluster):
            total += 2
            continue
        for ch in cluster:
            cp = ord(ch)
            total += 1 if any(lo <= cp <= hi for lo, hi in X_LIGHT_RANGES) else 2
    return total


def _count_plain(text: str, counting: Counting) -> int:
    if counting == "chars":
        return len(text)
    if counting == "graphemes":
        return grapheme_count(text)
    if counting == "utf16":
        return utf16_units(text)
    if counting == "utf8":
        return utf8_bytes(text)
    return _x_weight(text)


def _valid_host(url: str) -> bool:
    """Whether a URL-looking match has a host a network would link (every label 1-63 chars, punycode too)."""
    rest = url.split("://", 1)[-1]
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
    try:
        host.encode("idna")  # refuses empty labels and labels over 63 characters once punycode-encoded
    except UnicodeError:
        return False
    return bool(host)


def urls(text: str) -> list[tuple[int, int]]:
    """Spans of the links in ``text`` (with or without a scheme) that count at a fixed length."""
    return [m.span() for m in URL.finditer(text) if _valid_host(m.group())]


def count(text: str, counting: Counting, *, url_length: int | None = None) -> int:
    """Length of ``text`` under one counting rule, every URL weighing ``url_length`` when given."""
    if counting == "x_weighted":
        text = unicodedata.normalize("NFC", text)
    if url_length is None:
        return _count_plain(text, counting)
    total, pos = 0, 0
    for start, end in urls(text):
        total += _count_plain(text[pos:start], counting) + url_length
        pos = end
    return total + _count_plain(text[pos:], counting)


def x_weighted_length(text: str) -> int:
    """X's weighted length (twitter-text v3: URLs 23, CJK and emoji 2, Latin 1)."""
    return count(text, "x_weighted", url_length=X_URL_LENGTH)
