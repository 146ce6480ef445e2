"""When to send a failed call again, and after how long. Pure: the clients do the waiting."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from e2bapi.errors import E2BError, RateLimitedError, ServerError, TransportError
from e2bapi.exchange import Call


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 429s for every call; 5xx and lost connections only where repeating is harmless.

    A 429 means the request was refused before anything happened, so even a create may be
    sent again. A 5xx or a dropped connection leaves the outcome unknown: only calls marked
    `retry_safe` (reads, pause, kill, timeout, ...) are repeated, and a create is repeated
    only when its request never left this machine.
    """

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    # A longer Retry-After is not waited out in-line: the caller (a collector job) gets the
    # RateLimitedError with its retry_after_s and slows itself down instead.
    retry_after_cap_s: float = 10.0
    random_fraction: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay_before_retry_s(self, call: Call, error: E2BError, attempt: int) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up and raise."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, RateLimitedError):
            if error.retry_after_s is None:
                return self.backoff_s(attempt)
            return error.retry_after_s if error.retry_after_s <= self.retry_after_cap_s else None
        if isinstance(error, TransportError) and (call.retry_safe or not error.request_sent):
            return self.backoff_s(attempt)
        if isinstance(error, ServerError) and call.retry_safe:
            return self.backoff_s(attempt)
        return None

    def backoff_s(self, attempt: int) -> float:
        """Exponential backoff with jitter: half fixed, half random, so clients spread out."""
        ceiling_s = min(self.backoff_cap_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return ceiling_s / 2 + ceiling_s / 2 * self.random_fraction()
