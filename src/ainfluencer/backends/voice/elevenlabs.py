"""ElevenLabs text-to-speech (paid): ``POST /v1/text-to-speech/{voice_id}`` returning 16-bit PCM we wrap as WAV."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from ainfluencer.backends.text.errors import parse_retry_after
from ainfluencer.backends.voice.base import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    VoiceBackend,
    VoiceClip,
    VoiceSettings,
    estimate_word_timings,
    speech_span,
    write_wav,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_multilingual_v2"
PCM_RATE = 24_000
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
AUTH_STATUSES = frozenset({401, 403})
PERMANENT_401_STATUSES = frozenset({"quota_exceeded", "payment_required"})  # 401 that no reconnect fixes
_VOICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ElevenLabsBackend(VoiceBackend):
    """ElevenLabs voices over its REST API; billed per character, ``seed`` is honoured on a best-effort basis."""

    name: ClassVar[str] = "elevenlabs"
    label: ClassVar[str] = "ElevenLabs (paid)"
    paid: ClassVar[bool] = True
    local: ClassVar[bool] = False
    deterministic: ClassVar[bool] = False
    supports_style: ClassVar[bool] = True
    speed_range: ClassVar[tuple[float, float]] = (0.7, 1.2)
    max_chars: ClassVar[int] = 5_000

    def __init__(
        self,
        *,
        api_key: SecretStr | str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        model_id: str = DEFAULT_MODEL,
        default_voice_id: str | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = 120.0,
        stability: float = 0.5,
        similarity_boost: float = 0.75,
    ) -> None:
        self.api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.base_url = base_url.rstrip("/")
        self.model_id = model_id
        self.default_voice_id = default_voice_id
        self.timeout = httpx.Timeout(connect=min(10.0, timeout_s), read=timeout_s, write=30.0, pool=10.0)
        self._client = client
        self.stability = stability
        self.similarity_boost = similarity_boost

    def __repr__(self) -> str:
        return f"ElevenLabsBackend(base_url={self.base_url!r}, api_key={'set' if self._key() else 'none'})"

    def _key(self) -> str:
        return self.api_key.get_secret_value() if self.api_key is not None else ""

    @property
    def client(self) -> httpx.Client:
        """The HTTP client (created on first use unless one was injected)."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def available(self) -> tuple[bool, str]:
        """Configured when an API key is set (reachability is checked by ``test_connection``)."""
        if not self._key():
            return False, "ElevenLabs needs an API key: add one in Settings → Voice"
        return True, ""

    def _redact(self, text: str) -> str:
        key = self._key()
        return text.replace(key, "***") if key and len(key) >= 4 else text

    def _status_error(self, response: httpx.Response) -> BackendError:
        """Map a non-success response to exactly one error kind."""
        status = response.status_code
        detail_status = ""
        detail = ""
        try:
            body: Any = json.loads(response.text) if response.content else None
        except ValueError:
            body = None
        if isinstance(body, dict):
            d = body.get("detail", body.get("error"))
            if isinstance(d, dict):
                detail_status = str(d.get("status") or d.get("code") or "")
                detail = str(d.get("message") or detail_status)
            elif isinstance(d, list) and d and isinstance(d[0], dict):
                detail = str(d[0].get("msg") or "")
            elif isinstance(d, str):
                detail = d
        if not detail and body is None:
            detail = response.text if response.text and len(response.text) < 300 else response.reason_phrase
        message = f"HTTP {status}: {self._redact(detail.strip())[:300]}" if detail else f"HTTP {status}"
        if status in AUTH_STATUSES and detail_status not in PERMANENT_401_STATUSES:
            return BackendAuthError(message, backend=self.name, status=status)
        if status in TRANSIENT_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return BackendTransientError(message, backend=self.name, status=status, retry_after=retry_after)
        return BackendPermanentError(message, backend=self.name, status=status)

    def _send(
        self,
        method: str,
        path: str,
        *,
        payload: Any = None,
        params: dict[str, str] | None = None,
        accept: str = "application/json",
    ) -> httpx.Response:
        """The choke point: every request of this backend goes through here."""
        ok, fix = self.available()
        if not ok:
            raise BackendUnavailable(fix, backend=self.name)
        headers = {"xi-api-key": self._key(), "accept": accept}
        started = time.perf_counter()
        try:
            response = self.client.request(
                method, f"{self.base_url}{path}", json=payload, params=params, headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise BackendTransientError(f"timed out ({type(exc).__name__})", backend=self.name) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise BackendUnavailable(f"base URL {self.base_url!r} is not usable: {exc}", backend=self.name) from exc
        except httpx.HTTPError as exc:
            raise BackendTransientError(f"network error: {type(exc).__name__}: {exc}", backend=self.name) from exc
        log.debug(
            "%s %s %s -> %s in %.3fs", self.name, method, path, response.status_code, time.perf_counter() - started
        )
        if not response.is_success:
            raise self._status_error(response)
        return response

    def list_voices(self) -> list[tuple[str, str]]:
        """(voice_id, name) of the voices this account can use."""
        response = self._send("GET", "/v1/voices")
        try:
            voices = response.json()["voices"]
            return [(str(v["voice_id"]), str(v.get("name", ""))) for v in voices]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendProtocolError("voice list is not the documented JSON", backend=self.name) from exc

    def speakers(self) -> list[str]:
        """Voice ids of the account, or an empty list when the API cannot be asked."""
        try:
            return [vid for vid, _ in self.list_voices()]
        except BackendError:
            return []

    def test_connection(self) -> tuple[bool, str]:
        """Check the key against the API; never raises."""
        try:
            voices = self.list_voices()
        except BackendError as exc:
            return False, f"{exc.kind}: {exc.message}"
        return True, f"ElevenLabs answered; {len(voices)} voices available"

    def _synthesize(self, text: str, voice: VoiceSettings, out_path: Path) -> VoiceClip:
        voice_id = voice.speaker or self.default_voice_id
        if not voice_id:
            raise BackendPermanentError("choose an ElevenLabs voice id for this character", backend=self.name)
        if not _VOICE_ID.match(voice_id):
            raise BackendPermanentError(f"{voice_id!r} is not an ElevenLabs voice id", backend=self.name)
        settings: dict[str, Any] = {
            "stability": self.stability,
            "similarity_boost": self.similarity_boost,
            "use_speaker_boost": True,
            "speed": voice.speed,
        }
        if voice.style is not None:
            settings["style"] = voice.style
        payload = {"text": text, "model_id": self.model_id, "voice_settings": settings, "seed": voice.seed}
        response = self._send(
            "POST",
            f"/v1/text-to-speech/{voice_id}",
            payload=payload,
            params={"output_format": f"pcm_{PCM_RATE}"},
            accept="audio/pcm",
        )
        ctype = response.headers.get("content-type", "").lower()
        pcm = response.content
        if "json" in ctype or "html" in ctype or "text/" in ctype:
            raise BackendProtocolError(f"expected PCM audio, got {ctype or 'no content type'}", backend=self.name)
        if len(pcm) < 2:
            raise BackendProtocolError("the audio came back empty", backend=self.name)
        pcm = pcm[: len(pcm) - len(pcm) % 2]
        write_wav(out_path, pcm, sample_rate=PCM_RATE)
        start, end = speech_span(pcm, PCM_RATE)
        return VoiceClip(
            path=out_path,
            duration_s=len(pcm) / 2 / PCM_RATE,
            sample_rate=PCM_RATE,
            word_timings=estimate_word_timings(text.split(), start, end),
            backend=self.name,
            characters=len(text),
        )
