"""Telegram Bot API limits: message and caption length in UTF-16 code units, 50 MB bot uploads."""

from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import VideoLimits

MB = 1024 * 1024

TEXT_RULES = (
    TextRules("telegram", "text", "Telegram message", 4096, "utf16", hashtag_range=(0, 3)),
    TextRules("telegram", "caption", "Telegram media caption", 1024, "utf16", hashtag_range=(0, 3)),
)
TEXT, CAPTION = TEXT_RULES

VIDEO = (
    VideoLimits(name="telegram", label="Telegram (Bot API upload)", max_duration_s=None, min_duration_s=0.0,
                max_size_bytes=50 * MB, video_codecs=("h264",), audio_codecs=("aac",),
                note="bots upload at most 50 MB through the public Bot API"),
)
