"""Pydantic schemas of the studio's voice and video API (voice settings, engines, presets, clip and video requests)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VoicePublic(BaseModel):
    """A character's voice: the engine and the settings it speaks with."""

    character_id: int
    engine: str = Field(description="voice engine (registry name): piper, espeak, elevenlabs, xtts")
    speaker: str | None = Field(description="the engine's voice/speaker; null: the engine's default voice")
    speed: float = Field(description="1.0 is the engine's normal rate")
    pitch: float = Field(description="semitones; only engines with pitch control accept a non-zero value")
    style: float | None = Field(description="0.0-1.0, how expressive; only engines with style control")
    seed: int = Field(description="fixes the engine's random choices: same settings, same voice")
    label: str


class VoiceUpdate(BaseModel):
    """Change a character's voice; fields left out keep their value (changing the engine clears the speaker)."""

    model_config = ConfigDict(extra="forbid")

    engine: str | None = Field(default=None, max_length=32)
    speaker: str | None = Field(default=None, max_length=100)
    speed: float | None = Field(default=None, gt=0, le=4)
    pitch: float | None = Field(default=None, ge=-24, le=24)
    style: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)


class VoiceEnginePublic(BaseModel):
    """One voice engine: whether it runs here (and if not, the fix) and what it can do."""

    name: str
    label: str
    available: bool
    fix: str = Field(description="what to do when the engine is unavailable")
    paid: bool
    local: bool
    deterministic: bool = Field(description="same text and settings give byte-identical audio")
    supports_pitch: bool
    supports_style: bool
    speed_min: float
    speed_max: float
    max_chars: int
    speakers: list[str] = Field(description="voices the engine offers here (empty when it cannot list them)")
    has_api_key: bool


class VoiceEnginesPublic(BaseModel):
    """Every voice engine."""

    data: list[VoiceEnginePublic]
    count: int


class LocalVoicePublic(BaseModel):
    """One voice of the local catalogue (Piper), for one character."""

    id: str = Field(description="use as the Piper speaker; `ainfluencer models pull <id>` downloads it")
    label: str
    language: str = Field(description="BCP-47")
    gender: str
    quality: str
    approx_bytes: int = Field(description="download size, about")
    installed: bool
    suggested: bool = Field(description="in one of the character's languages")


class LocalVoicesPublic(BaseModel):
    """The local voice catalogue."""

    data: list[LocalVoicePublic]
    count: int


class VoiceClipCreate(BaseModel):
    """Speak a text with the character's voice (or, for this clip only, some settings changed)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(default="", max_length=5000, description="what to say; empty with preview=true: a sample")
    preview: bool = Field(default=False, description="a short sample, stored as a draft tagged voice-preview")
    voice: VoiceUpdate | None = Field(default=None, description="settings for this clip only")


class VideoPresetPublic(BaseModel):
    """A video format: output size and rate plus the platform whose limits it meets."""

    name: str
    label: str
    width: int
    height: int
    fps: int
    max_duration_s: float
    platform: str | None
    output_preset: str


class VideoPresetsPublic(BaseModel):
    """Every video format."""

    data: list[VideoPresetPublic]
    count: int


class VideoCreate(BaseModel):
    """Compose a video: the script is narrated in the character's voice over the images."""

    model_config = ConfigDict(extra="forbid")

    script: str = Field(max_length=20_000, description="paragraphs (or sentences) become scenes, one image each")
    preset: str = Field(default="shorts", max_length=32, description="see GET /studio/video-presets")
    image_ids: list[int] = Field(default_factory=list, max_length=60,
                                 description="the character's image assets in order; empty: latest approved")
    music_id: int | None = Field(default=None, description="an audio asset mixed under the voice")
    captions: bool = Field(default=True, description="burn captions timed to the narration into the video")
    target_duration_s: float | None = Field(default=None, gt=0, description="exact length; empty: as the "
                                                                           "narration needs")
    title: str = Field(default="", max_length=200)
