"""Voice backends: Piper (offline default), espeak-ng (light fallback), ElevenLabs (paid), XTTS (optional extra)."""

from ainfluencer.backends.voice.base import VoiceBackend, VoiceClip, VoiceSettings, WordTiming
from ainfluencer.backends.voice.registry import (
    VOICE_BACKENDS,
    VoiceChain,
    create_voice_backend,
    default_voice_backend,
    voice_backend_status,
)

__all__ = [
    "VOICE_BACKENDS",
    "VoiceBackend",
    "VoiceChain",
    "VoiceClip",
    "VoiceSettings",
    "WordTiming",
    "create_voice_backend",
    "default_voice_backend",
    "voice_backend_status",
]
