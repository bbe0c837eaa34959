"""Retry policy: an object that returns a decision."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryDecision:
    """Whether to retry and after how long."""

    retry: bool
    delay: timedelta = timedelta(0)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    delay(n) = min(max_delay, base * 2 ** (n - 1)) * (1 + U(0, jitter)), for attempt n = 1, 2, ...
    A ``retry_after`` hint from the failure (e.g. HTTP Retry-After) is a floor on the delay.
    After ``max_attempts`` attempts the job fails for good.
    """

    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    jitter: float = 0.25

    def decide(
        self, *, attempt: int, max_attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> RetryDecision:
        """Decide what happens after failed attempt number ``attempt``."""
        if attempt >= max_attempts:
            return RetryDecision(retry=False)
        raw = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1))
        seconds = raw * (1 + (rng or random).uniform(0, self.jitter))  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            seconds = max(seconds, retry_after)
        return RetryDecision(retry=True, delay=timedelta(seconds=seconds))


DEFAULT_POLICY = RetryPolicy()
