"""Bluesky's post limits (lexicon app.bsky.feed.post: 300 graphemes; app.bsky.embed.video)."""

from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import VideoLimits

MB = 1024 * 1024

TEXT_RULES = (TextRules("bluesky", "post", "Bluesky post", 300, "graphemes", hashtag_range=(0, 3)),)
POST = TEXT_RULES[0]

VIDEO = (
    VideoLimits(name="bluesky", label="Bluesky", max_duration_s=180.0, min_duration_s=0.0, max_size_bytes=100 * MB,
                video_codecs=("h264",), audio_codecs=("aac",)),
)
