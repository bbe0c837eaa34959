"""Coqui XTTS v2 as an optional extra (``ainfluencer[xtts]``): multilingual neural voices from a local model folder.

The model is never downloaded at run time: point ``model_dir`` at a folder holding XTTS v2's
``config.json``, ``model.pth``, ``vocab.json`` and ``speakers_xtts.pth``. A speaker is one of the
model's built-in studio speakers. Cloning from a reference recording is accepted only together with
a recorded consent statement from the person recorded (see SCOPE.md on real people).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, ClassVar

from ainfluencer.backends.voice.base import (
    BackendPermanentError,
    BackendUnavailable,
    VoiceBackend,
    VoiceClip,
    VoiceSettings,
    estimate_word_timings,
    speech_span,
    write_wav,
)

INSTALL_FIX = "Coqui XTTS is not installed: install ainfluencer[xtts] (the TTS package and torch)"
SAMPLE_RATE = 24_000
MODEL_FILES = ("config.json", "model.pth", "vocab.json")


class XttsBackend(VoiceBackend):
    """Coqui XTTS v2 in-process (CPU or GPU); heavy, optional, loaded lazily and cached per model folder."""

    name: ClassVar[str] = "xtts"
    label: ClassVar[str] = "Coqui XTTS v2 (local, optional)"
    deterministic: ClassVar[bool] = True  # with torch seeded from VoiceSettings.seed on the same device
    speed_range: ClassVar[tuple[float, float]] = (0.5, 2.0)
    max_chars: ClassVar[int] = 5_000

    _models: ClassVar[dict[Path, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        model_dir: Path | str | None = None,
        language: str = "en",
        reference_wav: Path | str | None = None,
        reference_consent: str | None = None,
        device: str = "cpu",
    ) -> None:
        if reference_wav is not None and not (reference_consent or "").strip():
            raise BackendPermanentError(
                "a reference recording needs the recorded person's consent statement", backend=self.name
            )
        self.model_dir = Path(model_dir) if model_dir else None
        self.language = language
        self.reference_wav = Path(reference_wav) if reference_wav else None
        self.reference_consent = reference_consent
        self.device = device

    def available(self) -> tuple[bool, str]:
        """Whether the TTS package is installed and a complete local model folder is configured."""
        if importlib.util.find_spec("TTS") is None or importlib.util.find_spec("torch") is None:
            return False, INSTALL_FIX
        if self.model_dir is None:
            return False, "XTTS needs a local model folder: set the XTTS model directory in Settings → Voice"
        missing = [f for f in MODEL_FILES if not (self.model_dir / f).is_file()]
        if missing:
            return False, f"XTTS model folder {self.model_dir} lacks {', '.join(missing)}"
        if self.reference_wav is not None and not self.reference_wav.is_file():
            return False, f"reference recording {self.reference_wav} does not exist"
        return True, ""

    def _model(self) -> Any:
        assert self.model_dir is not None  # available() checked it
        key = self.model_dir.resolve()
        with self._lock:
            model = self._models.get(key)
            if model is None:
                from TTS.tts.configs.xtts_config import XttsConfig
                from TTS.tts.models.xtts import Xtts

                config = XttsConfig()
                config.load_json(str(key / "config.json"))
                model = Xtts.init_from_config(config)
                model.load_checkpoint(config, checkpoint_dir=str(key), eval=True)
                model.to(self.device)
                self._models[key] = model
        return model

    def speakers(self) -> list[str]:
        """The model's built-in studio speakers."""
        if not self.available()[0]:
            return []
        manager = getattr(self._model(), "speaker_manager", None)
        return sorted(getattr(manager, "speakers", {}) or {})

    def _conditioning(self, model: Any, speaker: str | None) -> tuple[Any, Any]:
        if self.reference_wav is not None and speaker is None:
            return model.get_conditioning_latents(audio_path=[str(self.reference_wav)])  # type: ignore[no-any-return]
        speakers = getattr(getattr(model, "speaker_manager", None), "speakers", None) or {}
        if not speakers:
            raise BackendPermanentError("this XTTS model ships no built-in speakers", backend=self.name)
        name = speaker or sorted(speakers)[0]
        if name not in speakers:
            raise BackendPermanentError(f"XTTS has no speaker {name!r}", backend=self.name)
        entry = speakers[name]
        return entry["gpt_cond_latent"], entry["speaker_embedding"]

    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        try:
            import numpy as np
            import torch
        except ImportError as exc:  # pragma: no cover - available() checked
            raise BackendUnavailable(INSTALL_FIX, backend=self.name) from exc
        model = self._model()
        latent, embedding = self._conditioning(model, voice.speaker)
        with self._lock:
            torch.manual_seed(voice.seed)
            out = model.inference(text, self.language, latent, embedding, speed=voice.speed)
        wav = np.asarray(out["wav"], dtype=np.float32)
        pcm = (np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        write_wav(out_path, pcm, sample_rate=SAMPLE_RATE)
        start, end = speech_span(pcm, SAMPLE_RATE)
        return VoiceClip(
            path=out_path,
            duration_s=len(pcm) / 2 / SAMPLE_RATE,
            sample_rate=SAMPLE_RATE,
            word_timings=estimate_word_timings(text.split(), start, end),
            backend=self.name,
            characters=len(text),
        )
