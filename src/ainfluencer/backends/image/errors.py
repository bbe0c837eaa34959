"""The image-backend exception hierarchy: the text backends' classes plus two image-specific leaves.

BackendError                     base; ``backend`` names who failed, the message is safe to show
├── BackendAuthError             401/403: the key (or the server's --api-auth) is wrong; reconnect needed
├── BackendTransientError        408/409/425/429/5xx, connect errors, timeouts, a job interrupted or
│                                out of GPU memory; retry with backoff, ``retry_after`` is a floor
├── BackendPermanentError        400/404/422, a workflow the server refuses, an exception in a node;
│   │                            retrying the same request will not help
│   ├── ModelMissing             the checkpoint/model is not on the server; ``model``
│   ├── BackendProtocolError     a success status with a body that is not the documented format
│   └── ContentRejected          a safety system refused the prompt or the output (the service's own
│                                message is kept); another backend may be tried, never a retry
└── BackendUnavailable           not configured, not running, dependency or extension missing
    └── MissingNodes             ComfyUI lacks the custom node types a workflow needs; ``nodes``, ``fix``

The classes are shared with the text and voice backends so one job runner and one fallback chain
understand them all (``as_job_error``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ainfluencer.backends.text.errors import (
    BackendAuthError,
    BackendError,
    BackendPermanentError,
    BackendProtocolError,
    BackendTransientError,
    BackendUnavailable,
    ModelMissing,
    parse_retry_after,
)

__all__ = [
    "BackendAuthError",
    "BackendError",
    "BackendPermanentError",
    "BackendProtocolError",
    "BackendTransientError",
    "BackendUnavailable",
    "ContentRejected",
    "MissingNodes",
    "ModelMissing",
    "parse_retry_after",
]


class ContentRejected(BackendPermanentError):
    """A safety system refused the prompt or flagged every output image."""


class MissingNodes(BackendUnavailable):
    """The ComfyUI server lacks node types a workflow needs; ``fix`` says which extension to install."""

    def __init__(self, nodes: Sequence[str], *, fix: str, backend: str = "") -> None:
        self.nodes = sorted(set(nodes))
        self.fix = fix
        super().__init__(f"unavailable: {fix} (missing node types: {', '.join(self.nodes)})", backend=backend)
