"""Facebook Page post and Reels limits."""

from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import VideoLimits

GB = 1024 * 1024 * 1024

TEXT_RULES = (TextRules("facebook", "post", "Facebook Page post", 63206, "chars", hashtag_range=(0, 3)),)
POST = TEXT_RULES[0]

VIDEO = (
    VideoLimits(name="facebook_reels", label="Facebook Reels", max_duration_s=90.0, min_duration_s=3.0,
                max_size_bytes=1 * GB, video_codecs=("h264", "hevc"), audio_codecs=("aac",),
                min_fps=24.0, max_fps=60.0, orientation="vertical"),
)
