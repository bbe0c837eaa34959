"""X's text and video limits (developer.x.com: counting-characters, media upload)."""

from ainfluencer.platforms.counting import X_URL_LENGTH
from ainfluencer.platforms.rules import TextRules
from ainfluencer.platforms.spec import VideoLimits

MB = 1024 * 1024

TEXT_RULES = (
    TextRules("x", "post", "X post", 280, "x_weighted", url_length=X_URL_LENGTH, hashtag_range=(1, 2),
              hashtag_separator=" "),
    TextRules("x", "thread", "X thread post", 280, "x_weighted", url_length=X_URL_LENGTH, hashtag_range=(0, 2),
              hashtag_separator=" ", thread=True),
)
POST = TEXT_RULES[0]

VIDEO = (
    VideoLimits(name="x", label="X (Twitter)", max_duration_s=140.0, min_duration_s=0.5, max_size_bytes=512 * MB,
                video_codecs=("h264",), audio_codecs=("aac",), max_fps=60.0, max_width=1920, max_height=1920),
)
