"""The offline persona writer as a text backend: always there, free, and it never fails."""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import ClassVar

from ainfluencer.backends.text.base import ChatMessage, ChatResult, TextBackend, approx_tokens
from ainfluencer.characters.persona import Persona
from ainfluencer.writing.offline import OfflineWriter, WritingRequest

MODEL_NAME = "persona-templates"


class OfflineTextBackend(TextBackend):
    """Answers from the persona template grammar; reads the request from the last user turn."""

    name: ClassVar[str] = "offline"
    label: ClassVar[str] = "Offline persona writer"
    streams: ClassVar[bool] = False
    paid: ClassVar[bool] = False
    default_timeout: ClassVar[float] = 5.0
    default_model: ClassVar[str] = MODEL_NAME

    def __init__(self, persona: Persona | None = None, *, character_name: str = "", seed: int | None = None) -> None:
        self.persona = persona or Persona()
        self.character_name = character_name
        self.seed = seed
        self.model = MODEL_NAME

    def __repr__(self) -> str:
        return f"OfflineTextBackend(character_name={self.character_name!r})"

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        temperature: float = 0.8,
        max_tokens: int = 512,
    ) -> ChatResult:
        """Write the requested text with the offline grammar (``WritingRequest.to_prompt`` format)."""
        started = time.perf_counter()
        user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        request = WritingRequest.from_prompt(user)
        # a fixed seed gives the same answer to the same request, and different answers to different ones
        seed = None if self.seed is None else self.seed ^ zlib.crc32(user.encode())
        text = OfflineWriter(self.persona, character_name=self.character_name).write(request, seed=seed)
        return ChatResult(
            text=text,
            model=MODEL_NAME,
            input_tokens=sum(approx_tokens(m.content) for m in messages),
            output_tokens=approx_tokens(text),
            latency_s=time.perf_counter() - started,
            backend=self.name,
            paid=False,
            finish_reason="stop",
        )

    async def list_models(self) -> list[str]:
        """The one built-in "model"."""
        return [MODEL_NAME]
