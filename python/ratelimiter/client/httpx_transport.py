"""httpx transports that wait for quota and retry politely: ``RateLimitedTransport`` and
``AsyncRateLimitedTransport``.

::

    transport = AsyncRateLimitedTransport(limiter, max_concurrency=10,
                                          retry=RetryPolicy(max_retries=3))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/items")
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Optional

import httpx

from ..exceptions import RetryExhausted
from . import _waiting
from ._http import CostSpec, KeySpec, _Options, send_with_retries
from .breaker import CircuitBreaker
from .retry import RetryPolicy, _Attempts

__all__ = ["AsyncRateLimitedTransport", "RateLimitedTransport"]

_DEFAULT = RetryPolicy()


class RateLimitedTransport(httpx.BaseTransport):
    """An ``httpx.Client`` transport that waits for quota before each request and retries
    refused ones; behaves exactly as :class:`~ratelimiter.client.RateLimitedSession`
    (same keywords; ``key``/``cost`` callables receive the ``httpx.Request``).

    Args:
        transport: The transport that sends the requests (default ``httpx.HTTPTransport()``).
    """

    def __init__(self, limiter: Any, *, key: KeySpec = None, cost: CostSpec = 1,
                 retry: Optional[RetryPolicy] = _DEFAULT,
                 breaker: Optional[CircuitBreaker] = None,
                 max_concurrency: Optional[int] = None,
                 share_pauses: bool = False,
                 transport: Optional[httpx.BaseTransport] = None) -> None:
        self._rl = _Options(limiter, key, cost, retry, breaker, max_concurrency,
                            share_pauses)
        self._transport = transport if transport is not None else httpx.HTTPTransport()
        self._slots = (threading.BoundedSemaphore(self._rl.max_concurrency)
                       if self._rl.max_concurrency is not None else None)

    @property
    def limiter(self) -> Any:
        return self._rl.limiter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return send_with_retries(self._rl, self._slots, request, str(request.url),
                                 request.method,
                                 lambda: self._transport.handle_request(request),
                                 lambda response: response.read())

    def close(self) -> None:
        self._transport.close()


class AsyncRateLimitedTransport(httpx.AsyncBaseTransport):
    """The ``httpx.AsyncClient`` twin of :class:`RateLimitedTransport`: waits with
    ``acquire_async`` (never blocking the event loop), bounds in-flight requests per event
    loop with an ``asyncio.Semaphore`` (``max_concurrency``).

    Args:
        transport: The transport that sends (default ``httpx.AsyncHTTPTransport()``).
    """

    def __init__(self, limiter: Any, *, key: KeySpec = None, cost: CostSpec = 1,
                 retry: Optional[RetryPolicy] = _DEFAULT,
                 breaker: Optional[CircuitBreaker] = None,
                 max_concurrency: Optional[int] = None,
                 share_pauses: bool = False,
                 transport: Optional[httpx.AsyncBaseTransport] = None) -> None:
        self._rl = _Options(limiter, key, cost, retry, breaker, max_concurrency,
                            share_pauses)
        self._transport = transport if transport is not None else httpx.AsyncHTTPTransport()
        self._slots: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    @property
    def limiter(self) -> Any:
        return self._rl.limiter

    def _semaphore(self) -> Optional[asyncio.Semaphore]:
        if self._rl.max_concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        semaphore = self._slots.get(loop)
        if semaphore is None:
            semaphore = self._slots[loop] = asyncio.Semaphore(self._rl.max_concurrency)
        return semaphore

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        options = self._rl
        timer = _waiting._current_timer(None)
        key = options.key_for(request, str(request.url))
        cost = options.cost_for(request)
        attempts = _Attempts(options.retry, timer.monotonic())
        semaphore = self._semaphore()
        while True:
            if options.breaker is not None:
                options.breaker.before_call()
            if semaphore is not None:
                await semaphore.acquire()
            try:
                if options.share_pauses:  # the store's GET, off the event loop
                    await asyncio.to_thread(options.before_acquire, key)
                await _waiting.acquire_async(options.limiter, key, cost,
                                             attempts.remaining_budget(timer.monotonic()))
                attempts.sent += 1
                try:
                    response = await self._transport.handle_async_request(request)
                    if response.status_code in options.retry.retry_statuses:
                        await response.aread()  # inside the slot: the body is in flight
                except Exception:
                    if options.breaker is not None:
                        options.breaker.record_failure()
                    raise
            finally:
                if semaphore is not None:
                    semaphore.release()
            retryable, server_wait = options.after_response(key, request.method, response,
                                                            share=False)
            if server_wait is not None and options.share_pauses:
                await asyncio.to_thread(_waiting.share_pause, options.limiter, key, server_wait)
            if not retryable:
                return response
            wait, reason = attempts.next_wait(server_wait, timer.monotonic())
            await response.aclose()
            if wait is None:
                raise RetryExhausted(response, attempts.sent, reason)
            if server_wait is None:
                await timer.sleep_async(wait)

    async def aclose(self) -> None:
        await self._transport.aclose()
