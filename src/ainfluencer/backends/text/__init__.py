"""Text backends: Ollama, OpenAI-compatible servers, Anthropic and the offline persona writer."""

from ainfluencer.backends.text.base import (
    ChatMessage,
    ChatResult,
    ChatStream,
    ConnectionReport,
    HttpTextBackend,
    TextBackend,
    as_messages,
)
from ainfluencer.backends.text.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    ModelMissing,
)

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendPermanentError",
    "BackendProtocolError",
    "BackendTransientError",
    "BackendUnavailable",
    "ChatMessage",
    "ChatResult",
    "ChatStream",
    "ConnectionReport",
    "HttpTextBackend",
    "ModelMissing",
    "TextBackend",
    "as_messages",
]
