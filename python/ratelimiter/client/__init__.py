"""Client side: call rate-limited APIs politely.

* ``limiter.acquire(key, cost=1, timeout=None)`` / ``await limiter.acquire_async(...)`` on
  every limiter: wait for quota (exact sleeps, first come first served) instead of refusing.
* :class:`Throttle`: rate plus in-flight concurrency around any call (``with``,
  ``async with``, decorator).
* HTTP: :class:`RateLimitedSession` (requests), :class:`RateLimitedTransport` and
  :class:`AsyncRateLimitedTransport` (httpx), with :class:`RetryPolicy` (``Retry-After``,
  IETF ``RateLimit``, exponential backoff with full jitter) and :class:`CircuitBreaker`.

The HTTP adapters are imported on first use, so ``requests`` and ``httpx`` are needed only
by the code that uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..exceptions import CircuitOpen, RateLimitTimeout, RetryExhausted
from ._waiting import acquire, acquire_async, pause
from .breaker import CircuitBreaker
from .retry import IDEMPOTENT_METHODS, RetryPolicy, parse_ratelimit_header, parse_retry_after
from .throttle import Throttle

if TYPE_CHECKING:
    from .httpx_transport import AsyncRateLimitedTransport, RateLimitedTransport
    from .requests_session import RateLimitedSession

__all__ = [
    "IDEMPOTENT_METHODS",
    "AsyncRateLimitedTransport",
    "CircuitBreaker",
    "CircuitOpen",
    "RateLimitTimeout",
    "RateLimitedSession",
    "RateLimitedTransport",
    "RetryExhausted",
    "RetryPolicy",
    "Throttle",
    "acquire",
    "acquire_async",
    "parse_ratelimit_header",
    "parse_retry_after",
    "pause",
]

_LAZY = {
    "RateLimitedSession": "requests_session",
    "RateLimitedTransport": "httpx_transport",
    "AsyncRateLimitedTransport": "httpx_transport",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
