"""What every HTTP adapter shares: keys, costs and the options they were given."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union
from urllib.parse import urlsplit

from ..exceptions import ConfigurationTypeError
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
                 max_concurrency: Optional[int]) -> None:
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
