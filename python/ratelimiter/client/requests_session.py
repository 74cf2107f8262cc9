"""``RateLimitedSession``: a ``requests.Session`` that waits for quota and retries politely.

::

    session = RateLimitedSession(TokenBucketRateLimiter(MemoryBackend(), 10, 1),
                                 retry=RetryPolicy(max_retries=3))
    session.get("https://api.example.com/items")   # waits for the host's quota first
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import requests

from ._http import CostSpec, KeySpec, _Options, send_with_retries
from .breaker import CircuitBreaker
from .retry import RetryPolicy

__all__ = ["RateLimitedSession"]

_DEFAULT = RetryPolicy()


class RateLimitedSession(requests.Session):
    """A ``requests.Session`` whose every request first waits for ``limiter``'s quota.

    Before each attempt: the breaker (``CircuitOpen`` at once when open), a concurrency
    slot (``max_concurrency``), then ``limiter.acquire(key, cost)`` (exact sleeps, first
    come first served). On a status in ``retry.retry_statuses`` it waits what the server
    asked (``Retry-After`` / ``RateLimit``, capped by ``retry.backoff_max``) or backs off
    with jitter, then retries, for idempotent methods only unless ``retry.methods`` says
    otherwise (a non-retried refusal is returned as is). A server's wait is also set as a
    pause on ``key``, so every other caller of that key in the process waits too. When the
    policy gives up it raises :class:`~ratelimiter.exceptions.RetryExhausted` carrying the
    last response.

    Args:
        limiter: Any limiter (a ``RedisBackend`` one shares the budget across hosts).
        key: A str, a callable of the ``PreparedRequest``, or ``None`` (the URL's host).
        cost: An int or a callable of the ``PreparedRequest`` (e.g. a token estimate for a
            ``MultiRateLimiter``: ``{"requests": 1, "tokens": n}``).
        retry: The :class:`RetryPolicy` (default ``RetryPolicy()``; ``None``: no retries).
        breaker: A :class:`CircuitBreaker`, or ``None``.
        max_concurrency: Most requests in flight at once through this session.
        share_pauses: Also store a server's wait in the limiter's backend (one ``SET``
            with a TTL under ``<key_prefix>client-pause:<key>``), and read it before each
            attempt (one ``GET``), so with a ``RedisBackend`` a 429 seen by one process
            makes every process and host wait. Off by default: it costs a round trip.
    """

    def __init__(self, limiter: Any, *, key: KeySpec = None, cost: CostSpec = 1,
                 retry: Optional[RetryPolicy] = _DEFAULT,
                 breaker: Optional[CircuitBreaker] = None,
                 max_concurrency: Optional[int] = None,
                 share_pauses: bool = False) -> None:
        super().__init__()
        self._rl = _Options(limiter, key, cost, retry, breaker, max_concurrency,
                            share_pauses)
        self._slots = (threading.BoundedSemaphore(self._rl.max_concurrency)
                       if self._rl.max_concurrency is not None else None)

    @property
    def limiter(self) -> Any:
        return self._rl.limiter

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        return send_with_retries(self._rl, self._slots, request, request.url or "",
                                 request.method or "GET",
                                 lambda: super(RateLimitedSession, self).send(request, **kwargs),
                                 lambda response: response.content)
