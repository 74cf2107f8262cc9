"""What every HTTP adapter shares: keys, costs and the options they were given."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import urlsplit

from ..exceptions import ConfigurationTypeError, RetryExhausted
from . import _waiting
from .breaker import CircuitBreaker
from .retry import RetryPolicy, _Attempts
from .throttle import _check_concurrency

__all__ = ["KeySpec", "CostSpec", "host_key"]

KeySpec = Union[str, Callable[[Any], str], None]
CostSpec = Union[int, Callable[[Any], Any]]
_Response = TypeVar("_Response")


def host_key(url: str) -> str:
    """``host[:port]`` of ``url``, lower-cased, without credentials: the default key, so
    every API host gets its own budget."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


class _Options:
    """An adapter's validated keywords (the same for requests and httpx, sync and async)."""

    def __init__(self, limiter: Any, key: KeySpec, cost: CostSpec,
                 retry: Optional[RetryPolicy], breaker: Optional[CircuitBreaker],
                 max_concurrency: Optional[int], share_pauses: bool = False) -> None:
        if not callable(getattr(limiter, "is_allowed", None)):
            raise ConfigurationTypeError(
                f"limiter must have is_allowed(), got {type(limiter).__name__}")
        if key is not None and not isinstance(key, str) and not callable(key):
            raise ConfigurationTypeError(
                f"key must be a str, a callable of the request or None, got {type(key).__name__}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationTypeError(
                f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise ConfigurationTypeError(
                f"breaker must be a CircuitBreaker or None, got {type(breaker).__name__}")
        self.limiter = limiter
        self.key = key
        self.cost = cost
        self.retry = retry if retry is not None else RetryPolicy(max_retries=0)
        self.breaker = breaker
        self.max_concurrency = _check_concurrency(max_concurrency)
        self.share_pauses = bool(share_pauses)

    def before_acquire(self, key: str) -> None:
        """With ``share_pauses``: adopt a pause another process stored for ``key``."""
        if self.share_pauses:
            left = _waiting.shared_pause_left(self.limiter, key)
            if left > 0:
                _waiting.pause(self.limiter, key, left)

    def server_said_wait(self, key: str, seconds: float, *, share: bool = True) -> None:
        """The server asked for ``seconds``: every caller of ``key`` waits (here, and with
        ``share_pauses`` in every process using the limiter's store; ``share=False``
        leaves that to an async caller, which must not block its loop on the store)."""
        _waiting.pause(self.limiter, key, seconds)
        if self.share_pauses and share:
            _waiting.share_pause(self.limiter, key, seconds)

    def key_for(self, request: Any, url: str) -> str:
        if self.key is None:
            return host_key(url)
        if isinstance(self.key, str):
            return self.key
        key = self.key(request)
        if not isinstance(key, str):
            raise ConfigurationTypeError(f"key callable must return a str, got {key!r}")
        return key

    def cost_for(self, request: Any) -> Any:
        return self.cost(request) if callable(self.cost) else self.cost

    def is_failure(self, status: int) -> bool:
        """What the breaker counts against the service: retryable statuses and 5xx."""
        return status in self.retry.retry_statuses or status >= 500

    def after_response(self, key: str, method: str, response: Any, *, share: bool = True,
                       ) -> tuple[bool, Optional[float]]:
        """Breaker bookkeeping and the server's wait; ``(retryable, server_wait)``."""
        status = response.status_code
        if self.breaker is not None:
            if self.is_failure(status):
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
        if status not in self.retry.retry_statuses:
            return False, None
        server_wait = self.retry.server_wait(response.headers, time.time())
        if server_wait is not None:
            self.server_said_wait(key, server_wait, share=share)
        return self.retry.retries_method(method), server_wait


def send_with_retries(options: _Options, slots: Optional[threading.BoundedSemaphore],
                      request: Any, url: str, method: str, send: Callable[[], _Response],
                      read_body: Callable[[_Response], object]) -> _Response:
    """The synchronous adapters' loop (requests and httpx): per attempt the breaker, a
    concurrency slot, the quota (``acquire``), then ``send()``; a refused response is
    retried as the policy says, or raised as ``RetryExhausted`` with its body read
    (``read_body``) so it is usable after close."""
    timer = _waiting._current_timer(None)
    key = options.key_for(request, url)
    cost = options.cost_for(request)
    attempts = _Attempts(options.retry, timer.monotonic())
    while True:
        if options.breaker is not None:
            options.breaker.before_call()
        if slots is not None:
            slots.acquire()
        try:
            options.before_acquire(key)
            _waiting.acquire(options.limiter, key, cost,
                             attempts.remaining_budget(timer.monotonic()))
            attempts.sent += 1
            try:
                response = send()
            except Exception:
                if options.breaker is not None:
                    options.breaker.record_failure()
                raise
        finally:
            if slots is not None:
                slots.release()
        retryable, server_wait = options.after_response(key, method, response)
        if not retryable:
            return response
        wait, reason = attempts.next_wait(server_wait, timer.monotonic())
        if wait is None:
            read_body(response)
            response.close()  # type: ignore[attr-defined]
            raise RetryExhausted(response, attempts.sent, reason)
        response.close()  # type: ignore[attr-defined]
        if server_wait is None:
            timer.sleep(wait)
        # else: the pause makes the next acquire wait exactly that long (in FIFO order)
