"""Instagram's caption and Reels limits (Graph API content publishing)."""

from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import VideoLimits

MB = 1024 * 1024

TEXT_RULES = (
    TextRules("instagram", "caption", "Instagram caption", 2200, "chars", hashtag_range=(3, 10), hashtag_hard_max=30),
)
CAPTION = TEXT_RULES[0]

VIDEO = (
    VideoLimits(
        name="instagram_reels", label="Instagram Reels (Graph API)", max_duration_s=900.0, min_duration_s=3.0,
        max_size_bytes=300 * MB, video_codecs=("h264", "hevc"), audio_codecs=("aac",),
        min_fps=23.0, max_fps=60.0, max_width=1920, max_height=3600,
        note="Graph API reels: 3 s to 15 min, 300 MB, 23-60 fps, AAC ≤ 48 kHz; in-app Reels shown in the "
             "Reels tab were long limited to 90 s",
    ),
)
