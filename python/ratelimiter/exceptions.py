"""Exceptions raised by smart-ratelimiter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .algorithms.base import RateLimitResult

__all__ = [
    "BackendConnectionError",
    "BackendError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "RateLimitError",
    "RateLimitExceeded",
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


class BackendError(Exception):
    """A backend could not complete an operation (I/O error, timeout, corrupt state)."""


class BackendConnectionError(BackendError):
    """A backend could not be reached."""


class ConfigurationError(ValueError):
    """An invalid parameter or argument; the message names it."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """An argument of the wrong type (catchable as ``TypeError`` or ``ConfigurationError``)."""
