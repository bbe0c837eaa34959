"""YouTube Data API v3 limits: title 100 characters, description 5000 UTF-8 bytes, upload formats."""

from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import VideoLimits

GB = 1024 * 1024 * 1024

TEXT_RULES = (
    TextRules("youtube", "description", "YouTube description", 5000, "utf8", hashtag_range=(3, 15),
              hashtag_hard_max=15, hashtags_shown=3, forbidden_chars="<>"),
    TextRules("youtube", "title", "YouTube title", 100, "chars", hashtag_range=(0, 0), hashtag_placement="none",
              forbidden_chars="<>"),
)
DESCRIPTION, TITLE = TEXT_RULES

VIDEO = (
    VideoLimits(name="youtube_shorts", label="YouTube Shorts", max_duration_s=180.0, min_duration_s=1.0,
                max_size_bytes=256 * GB, video_codecs=("h264", "hevc", "vp9", "av1"), audio_codecs=("aac", "opus"),
                orientation="vertical", note="Shorts are up to 3 minutes, square or vertical"),
    VideoLimits(name="youtube", label="YouTube", max_duration_s=12 * 3600.0, min_duration_s=1.0,
                max_size_bytes=256 * GB, video_codecs=("h264", "hevc", "vp9", "av1"), audio_codecs=("aac", "opus"),
                note="unverified channels are limited to 15 minutes"),
)
