"""Output presets, and each platform's published video limits (read from its platform package).

A preset is how we encode (size, rate, bitrate ceiling, caption layout); a platform is what a
network accepts. ``compose`` refuses a script whose planned duration or worst-case size breaks the
preset or the chosen platform before spending any time on rendering. Variants are plain
``dataclasses.replace(get_preset("long_horizontal"), width=1280, height=720)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ainfluencer.errors import InvalidInput
from ainfluencer.platforms.registry import DEFAULT
from ainfluencer.platforms.spec import VideoLimits

MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class VideoPreset:
    """How one kind of video is encoded; the bitrate ceiling makes the size estimate a real upper bound."""

    name: str
    label: str
    width: int
    height: int
    fps: int
    max_duration_s: float
    min_duration_s: float = 1.0
    video_codec: str = "h264"
    audio_codec: str = "aac"
    profile: str = "high"
    pix_fmt: str = "yuv420p"
    crf: int = 20
    max_video_kbps: int = 8000
    audio_kbps: int = 128
    audio_rate: int = 48_000
    # caption layout, as fractions of the frame so reduced-size variants keep the look
    caption_font_frac: float = 0.06  # of the shorter side
    caption_margin_frac: float = 0.2  # of the height, from the bottom (clear of the apps' own buttons)
    caption_max_chars: int = 26

    @property
    def vertical(self) -> bool:
        """Whether the frame is taller than wide."""
        return self.height > self.width

    def max_size_bytes(self, duration_s: float) -> int:
        """Worst-case file size for ``duration_s``: bitrate ceilings plus 2 % container overhead."""
        bits = (self.max_video_kbps + self.audio_kbps) * 1000 * duration_s
        return int(bits / 8 * 1.02) + 64 * 1024


# What a network's upload API accepts is declared in its platform package (``platforms/<name>/rules.py``).
PlatformLimits = VideoLimits


PRESETS: dict[str, VideoPreset] = {
    p.name: p
    for p in (
        VideoPreset(
            name="short_vertical",
            label="Short vertical (Reels / Shorts / TikTok-style), 1080×1920",
            width=1080,
            height=1920,
            fps=30,
            max_duration_s=60.0,
            max_video_kbps=8000,
        ),
        VideoPreset(
            name="long_horizontal",
            label="Long horizontal (YouTube-style), 1920×1080",
            width=1920,
            height=1080,
            fps=30,
            max_duration_s=3600.0,  # our own cap: an hour keeps one render job within a worker's lease
            max_video_kbps=10_000,
            caption_font_frac=0.055,
            caption_margin_frac=0.08,
            caption_max_chars=42,
        ),
    )
}

# A render target with no publishing adapter here (videos are downloaded and posted by a person).
TIKTOK = VideoLimits(
    name="tiktok", label="TikTok (Content Posting API)", max_duration_s=600.0, min_duration_s=3.0,
    max_size_bytes=4 * GB, video_codecs=("h264", "hevc", "vp8", "vp9"), audio_codecs=("aac", "mp3"),
    min_fps=23.0, max_fps=60.0, max_width=4096, max_height=4096,
    note="a creator's own limit (creator_info max_video_post_duration_sec) may be lower",
)

PLATFORMS: dict[str, VideoLimits] = {
    limits.name: limits for limits in (*(v for spec in DEFAULT for v in spec.video), TIKTOK)
}


def get_preset(preset: str | VideoPreset) -> VideoPreset:
    """The preset named ``preset`` (a ``VideoPreset`` is passed through)."""
    if isinstance(preset, VideoPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise InvalidInput(f"unsupported video preset {preset!r}; choose one of: {known}", field="preset") from None


def get_platform(platform: str | PlatformLimits | None) -> PlatformLimits | None:
    """The platform limits named ``platform`` (None: no platform check)."""
    if platform is None or isinstance(platform, PlatformLimits):
        return platform
    try:
        return PLATFORMS[platform]
    except KeyError:
        known = ", ".join(sorted(PLATFORMS))
        raise InvalidInput(f"unknown platform {platform!r}; choose one of: {known}", field="platform") from None


def max_duration(preset: VideoPreset, platform: PlatformLimits | None) -> float:
    """The longest video both the preset and the platform allow."""
    limit = preset.max_duration_s
    if platform is not None and platform.max_duration_s is not None:
        limit = min(limit, platform.max_duration_s)
    return limit


def check_format(preset: VideoPreset, platform: PlatformLimits | None) -> None:
    """Refuse a preset whose codecs, frame rate or frame size the platform does not accept."""
    problems = []
    if preset.width % 2 or preset.height % 2 or preset.width < 16 or preset.height < 16:
        problems.append(f"frame size {preset.width}×{preset.height} must be even and at least 16 px")
    if not 1 <= preset.fps <= 120:
        problems.append(f"frame rate {preset.fps} is outside 1-120")
    if preset.video_codec != "h264" or preset.audio_codec != "aac":
        problems.append(f"we encode H.264 + AAC only, not {preset.video_codec} + {preset.audio_codec}")
    if platform is not None:
        if preset.video_codec not in platform.video_codecs:
            problems.append(f"{platform.label} does not accept {preset.video_codec} video")
        if preset.audio_codec not in platform.audio_codecs:
            problems.append(f"{platform.label} does not accept {preset.audio_codec} audio")
        if not platform.min_fps <= preset.fps <= platform.max_fps:
            problems.append(f"{platform.label} takes {platform.min_fps:g}-{platform.max_fps:g} fps, not {preset.fps}")
        if platform.max_width and preset.width > platform.max_width:
            problems.append(f"{platform.label} takes at most {platform.max_width} px wide, not {preset.width}")
        if platform.max_height and preset.height > platform.max_height:
            problems.append(f"{platform.label} takes at most {platform.max_height} px high, not {preset.height}")
        if platform.orientation == "vertical" and preset.width > preset.height:
            problems.append(f"{platform.label} takes vertical or square video; {preset.name} is horizontal")
    if problems:
        raise InvalidInput(f"preset {preset.name} cannot be used: " + "; ".join(problems), field="preset")


def check_duration_and_size(preset: VideoPreset, platform: PlatformLimits | None, duration_s: float) -> None:
    """Refuse a planned duration (and its worst-case size) that the preset or platform would not take."""
    limit = max_duration(preset, platform)
    where = f"{preset.name}" + (f" on {platform.label}" if platform else "")
    if duration_s > limit + 1e-6:
        raise InvalidInput(
            f"the video would be {duration_s:.1f} s; {where} allows at most {limit:g} s — "
            "shorten the narration or drop scenes",
            field="duration",
        )
    low = max(preset.min_duration_s, platform.min_duration_s if platform else 0.0)
    if duration_s < low - 1e-6:
        raise InvalidInput(f"the video would be {duration_s:.1f} s; {where} needs at least {low:g} s",
                           field="duration")
    if platform is not None and platform.max_size_bytes is not None:
        worst = preset.max_size_bytes(duration_s)
        if worst > platform.max_size_bytes:
            raise InvalidInput(
                f"at up to {preset.max_video_kbps} kb/s a {duration_s:.0f} s video may reach "
                f"{worst / MB:.0f} MB; {platform.label} takes at most {platform.max_size_bytes / MB:.0f} MB — "
                "lower the preset's bitrate ceiling or shorten the video",
                field="duration",
            )
