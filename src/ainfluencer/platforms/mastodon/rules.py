"""Mastodon's default status limit: 500 grapheme clusters, every link 23 (StatusLengthValidator)."""

from ainfluencer.platforms.rules import TextRules

TEXT_RULES = (
    TextRules("mastodon", "post", "Mastodon post", 500, "graphemes", url_length=23, hashtag_range=(1, 4)),
)
POST = TEXT_RULES[0]
