"""Text rules as data: how long one kind of text on one network may be, how it is counted, hashtag customs.

Every network's package declares its :class:`TextRules` once (``platforms/<name>/rules.py``); the
writer, the Compose preview, create-time validation and the adapter's send-time check all read that
one object and count with :func:`text_length` (implementations in :mod:`ainfluencer.platforms.counting`).

Hashtag customs: ``hashtag_range`` is what reads as natural on the platform (the writer never goes
above its upper end), ``hashtag_hard_max`` is what the platform itself enforces (Instagram refuses
more than 30; YouTube ignores every hashtag of a description that has more than 15).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ainfluencer.platforms.counting import Counting, count

COUNTING_LABELS: dict[str, str] = {
    "chars": "characters", "graphemes": "characters", "utf16": "UTF-16 units", "utf8": "bytes",
    "x_weighted": "weighted characters",
}


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

    @property
    def unit(self) -> str:
        """What the length is measured in, for messages ("weighted characters", "bytes" ...)."""
        return COUNTING_LABELS[self.counting]

    def length(self, text: str) -> int:
        """Length of ``text`` as the network counts it."""
        return text_length(text, self)

    def problem(self, text: str, *, name: str = "") -> str:
        """Why ``text`` is over the limit, in words ("" when it fits)."""
        n = text_length(text, self)
        if n <= self.max_length:
            return ""
        return f"The {self.label.lower()} is {n} {self.unit}; {name or self.label} allows {self.max_length}."


def text_length(text: str, rules: TextRules) -> int:
    """Length of ``text`` as the platform counts it (URLs at their fixed weight where it has one)."""
    return count(text, rules.counting, url_length=rules.url_length)
