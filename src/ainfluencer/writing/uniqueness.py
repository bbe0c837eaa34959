"""Near-duplicate detection for a character's own texts.

Method: normalise (NFKC, casefold, drop URLs, mentions, hashtags, emoji and punctuation), cut into
word 2-shingles (overlapping word pairs; texts of one word use the word itself), and compare sets
with exact Jaccard similarity |A ∩ B| / |A ∪ B|.

Why exact Jaccard and not MinHash/simhash: a character's history is thousands of short texts, not
millions, so exact set comparison is fast enough and has no estimation error. MinHash would be the
swap-in if one corpus grows past ~10⁵ texts (datasketch offers MinHashLSH).

Why 2-shingles and 0.5: with 3-shingles, changing two words of a 20-word caption already breaks a
third of the shingles, so light edits slip through; with single words, any two posts on the same
topic look alike. Word pairs keep word order but tolerate edits: re-ordering a few words or swapping
two or three of twenty leaves a Jaccard of 0.55–0.8, while unrelated posts by the same persona
(shared signature phrase, shared topic words) stay below 0.3. ``DEFAULT_THRESHOLD`` = 0.5 sits in
the gap.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_THRESHOLD = 0.5
SHINGLE_SIZE = 2

_STRIP = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def normalise(text: str) -> list[str]:
    """The words of a text that matter for sameness (casefolded, no links, tags, emoji or punctuation)."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return _WORD.findall(_STRIP.sub(" ", text))


def shingles(text: str, size: int = SHINGLE_SIZE) -> frozenset[tuple[str, ...]]:
    """The set of overlapping word n-grams of the normalised text."""
    words = normalise(text)
    if len(words) < size:
        return frozenset({tuple(words)}) if words else frozenset()
    return frozenset(tuple(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    """Jaccard similarity of two shingle sets (two empty texts count as identical)."""
    if not a and not b:
        return 1.0
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similarity(a: str, b: str) -> float:
    """How alike two texts are, 0.0 (nothing shared) to 1.0 (same words in the same order)."""
    return jaccard(shingles(a), shingles(b))


@dataclass(frozen=True)
class DuplicateCheck:
    """The outcome of checking one candidate against earlier texts."""

    duplicate: bool
    score: float
    matched_text: str | None


class UniquenessIndex:
    """Earlier texts with their shingles computed once, for checking many candidates."""

    def __init__(self, texts: Iterable[str] = (), *, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self._entries: list[tuple[str, frozenset[tuple[str, ...]]]] = []
        for t in texts:
            self.add(t)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, text: str) -> None:
        """Remember a text."""
        self._entries.append((text, shingles(text)))

    def check(self, candidate: str) -> DuplicateCheck:
        """The closest earlier text and whether it is too close."""
        cand = shingles(candidate)
        best_score, best_text = 0.0, None
        for text, sh in self._entries:
            score = jaccard(cand, sh)
            if score > best_score:
                best_score, best_text = score, text
        dup = best_text is not None and best_score >= self.threshold
        return DuplicateCheck(dup, best_score, best_text)


def is_near_duplicate(
    candidate: str, previous_texts: Iterable[str], threshold: float = DEFAULT_THRESHOLD
) -> tuple[bool, float, str | None]:
    """Whether ``candidate`` is an exact or near duplicate of an earlier text: (flag, score, closest text)."""
    result = UniquenessIndex(previous_texts, threshold=threshold).check(candidate)
    return result.duplicate, result.score, result.matched_text
