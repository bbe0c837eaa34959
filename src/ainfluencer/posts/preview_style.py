"""How each network shows a post in its feed, for the look-alike previews in Compose and Review.

Only what the preview needs and the writing rules do not already say: where the feed folds a long text
behind "… more" (characters, approximate, from each network's app as of 2026) and which media crop the
feed uses (as a CSS aspect ratio; the CSS class ``pv-card[data-platform=NAME]`` applies it). Limits and
counting stay in ``writing.platform_rules`` and the adapters' capabilities. A network missing here shows
its whole text and media uncropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeedStyle:
    """Where the feed folds text, what it calls the fold link, how media is cropped."""

    fold_chars: int | None = None
    more_label: str = "more"
    media_aspect: str = ""


FEED_STYLES: dict[str, FeedStyle] = {
    "instagram": FeedStyle(fold_chars=125, more_label="more", media_aspect="4 / 5"),
    "facebook": FeedStyle(fold_chars=477, more_label="See more", media_aspect="1 / 1"),
    "youtube": FeedStyle(fold_chars=100, more_label="...more", media_aspect="16 / 9"),
    "x": FeedStyle(media_aspect="16 / 9"),
    "bluesky": FeedStyle(media_aspect="16 / 9"),
    "mastodon": FeedStyle(media_aspect="16 / 9"),
    "telegram": FeedStyle(),
}


def feed_style(platform: str) -> FeedStyle:
    """The feed style of a network (an empty one for networks not listed)."""
    return FEED_STYLES.get(platform, FeedStyle())
