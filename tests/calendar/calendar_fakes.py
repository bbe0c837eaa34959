"""A FakeNet flavour with a documented daily posting cap, for the calendar's daily-cap checks (test-only)."""

from __future__ import annotations

from fake_network import FakeNetAdapter

from ainfluencer.platforms.base import Capabilities, MediaKind, RateLimit
from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import PlatformSpec


class FakeNetCappedAdapter(FakeNetAdapter):
    """FakeNet documenting 3 posts per 24 hours (and a looser 2 per hour)."""

    name = "fakenet_capped"
    display_name = "FakeNet Capped"
    capabilities = Capabilities(
        max_text_chars=100, media_kinds=frozenset({MediaKind.image}), max_media=1, max_image_bytes=64 * 1024,
        rate_limits=(RateLimit("post", 3, 86400), RateLimit("post", 2, 3600), RateLimit("delete", 1, 3600)),
    )


CAPPED = PlatformSpec(
    name="fakenet_capped", display_name="FakeNet Capped", adapter="calendar_fakes:FakeNetCappedAdapter",
    text_rules=(TextRules("fakenet_capped", "post", "FakeNet Capped post", 100, "chars"),),
)
