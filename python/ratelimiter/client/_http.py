"""What every HTTP adapter shares: keys, costs and the options they were given."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

from ..exceptions import ConfigurationTypeError
from . import _waiting
from .breaker import CircuitBreaker
from .retry import RetryPolicy
from .throttle import _check_concurrency

__all__ = ["KeySpec", "CostSpec", "host_key"]

KeySpec = Union[str, Callable[[Any], str], None]
CostSpec = Union[int, Callable[[Any], Any]]


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
