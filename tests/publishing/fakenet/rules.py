"""FakeNet's text rules: 280 characters, counted as code points."""

from ainfluencer.platforms.rules import TextRules

TEXT_RULES = (TextRules("fakenet", "post", "FakeNet post", 280, "chars", hashtag_range=(0, 3)),)
POST = TEXT_RULES[0]
LIMITED_RULES = (TextRules("fakenet_limited", "post", "FakeNet post", 280, "chars"),)
BLIND_RULES = (TextRules("fakenet_blind", "post", "FakeNet post", 280, "chars"),)
