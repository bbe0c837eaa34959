"""Video composition with the ffmpeg binary shipped by imageio-ffmpeg: presets, captions, probe, compose."""

from ainfluencer.media.video.compose import (
    ComposeResult,
    RenderCancelled,
    RenderFailed,
    Scene,
    Script,
    Timeline,
    compose,
)
from ainfluencer.media.video.presets import PLATFORMS, PRESETS, PlatformLimits, VideoPreset, get_platform, get_preset
from ainfluencer.media.video.probe import MediaInfo, ffmpeg_exe, probe, read_frame

__all__ = [
    "PLATFORMS",
    "PRESETS",
    "ComposeResult",
    "MediaInfo",
    "PlatformLimits",
    "RenderCancelled",
    "RenderFailed",
    "Scene",
    "Script",
    "Timeline",
    "VideoPreset",
    "compose",
    "ffmpeg_exe",
    "get_platform",
    "get_preset",
    "probe",
    "read_frame",
]
