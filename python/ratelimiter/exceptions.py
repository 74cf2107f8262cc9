"""Exceptions raised by smart-ratelimiter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .result import RateLimitResult

__all__ = [
    "BackendConnectionError",
    "BackendError",
    "CircuitOpen",
    "ConfigurationError",
    "ConfigurationTypeError",
    "RateLimitError",
    "RateLimitExceeded",
    "RateLimitTimeout",
    "RetryExhausted",
]


class RateLimitError(Exception):
    """Base class of rate-limit outcomes raised to callers."""


class RateLimitExceeded(RateLimitError):
    """A request was rejected. ``retry_after`` is the wait in seconds (``inf``: never)."""

    def __init__(
        self,
        key: str,
        limit: int,
        window: float,
        retry_after: float,
        result: Optional[RateLimitResult] = None,
    ) -> None:
        self.key = key
        self.limit = limit
        self.window = window
        self.retry_after = retry_after
        self.result = result
        super().__init__(
            f"rate limit exceeded for {key!r}: limit {limit} per {window}s, "
            f"retry after {retry_after:.3f}s"
        )


class RateLimitTimeout(RateLimitExceeded):
    """``acquire`` could not be admitted before its ``timeout``.

    Raised as soon as the wait is known to end after the deadline (it never sleeps past
    it). ``retry_after`` is the wait that was left when it gave up (``inf``: the cost can
    never be admitted).
    """


class RetryExhausted(RateLimitError):
    """An HTTP call was still refused (429/503) when the retry policy gave up.

    ``response`` is the last response (a ``requests.Response`` or ``httpx.Response``,
    already read), ``attempts`` how many requests were sent, ``reason`` why it stopped
    (``"max_retries"`` or ``"budget"``).
    """

    def __init__(self, response: Any, attempts: int, reason: str) -> None:
        self.response = response
        self.attempts = attempts
        self.reason = reason
        status = getattr(response, "status_code", "?")
        super().__init__(f"gave up after {attempts} attempts ({reason}); last status {status}")


class CircuitOpen(RateLimitError):
    """The circuit breaker is open: calls fail at once until ``retry_after`` seconds pass."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"circuit open; next trial in {retry_after:.3f}s")


class BackendError(Exception):
    """A backend could not complete an operation (I/O error, timeout, corrupt state)."""


class BackendConnectionError(BackendError):
    """A backend could not be reached."""


class ConfigurationError(ValueError):
    """An invalid parameter or argument; the message names it."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """An argument of the wrong type (catchable as ``TypeError`` or ``ConfigurationError``)."""
