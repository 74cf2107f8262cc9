"""Observability: count allowed and dropped decisions without touching the limiter.

::

    from ratelimiter import (InMemoryMetricsCollector, MemoryBackend, ObservableRateLimiter,
                             SlidingWindowRateLimiter)

    metrics = InMemoryMetricsCollector()
    limiter = ObservableRateLimiter(SlidingWindowRateLimiter(MemoryBackend(), 10, 1), metrics)
    for _ in range(15):
        limiter.is_allowed("user:42")
    metrics.get_stats("user:42")
    # {'key': 'user:42', 'allowed': 10, 'dropped': 5, 'total': 15, 'drop_rate': 0.333}

For Prometheus see :mod:`ratelimiter.prometheus` (labels by limiter name, not by key, so
the number of time series stays bounded). Subclass :class:`MetricsCollector` for anything
else (StatsD, OpenTelemetry, ...).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any, Optional

from .algorithms.base import RateLimitResult

__all__ = ["InMemoryMetricsCollector", "MetricsCollector", "ObservableRateLimiter"]


class MetricsCollector(ABC):
    """Receives the outcome of every decision made through an :class:`ObservableRateLimiter`.

    ``record`` is called on the request path, from any thread: keep it fast and thread-safe.
    """

    @abstractmethod
    def record(self, key: str, result: RateLimitResult) -> None:
        """Record one decision for ``key`` (the key as passed to ``is_allowed``)."""


def _drop_rate(dropped: int, total: int) -> float:
    return round(dropped / total, 3) if total else 0.0


class InMemoryMetricsCollector(MetricsCollector):
    """Thread-safe in-process counters of allowed and dropped decisions, global and per key.

    Args:
        max_keys: Most keys tracked individually (default 100,000). Decisions for further
            keys still count in the global totals, so rotating keys cannot exhaust memory;
            :attr:`untracked_keys` says how many decisions that affected. ``None``: no cap.
    """

    def __init__(self, max_keys: Optional[int] = 100_000) -> None:
        if max_keys is not None and (
            isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 0
        ):
            raise ValueError(f"max_keys must be an int >= 0 or None, got {max_keys!r}")
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._per_key: dict[str, list[int]] = {}  # key -> [allowed, dropped]
        self._allowed = 0
        self._dropped = 0
        self._untracked = 0

    def record(self, key: str, result: RateLimitResult) -> None:
        """Count one decision."""
        index = 0 if result.allowed else 1
        with self._lock:
            if index == 0:
                self._allowed += 1
            else:
                self._dropped += 1
            counts = self._per_key.get(key)
            if counts is None:
                if self._max_keys is not None and len(self._per_key) >= self._max_keys:
                    self._untracked += 1
                    return
                counts = self._per_key[key] = [0, 0]
            counts[index] += 1

    @property
    def untracked_keys(self) -> int:
        """Decisions counted only globally because ``max_keys`` keys were already tracked."""
        return self._untracked

    def get_stats(self, key: Optional[str] = None) -> dict[str, Any]:
        """A snapshot of the counters.

        Args:
            key: ``None``: global totals and a per-key breakdown::

                    {"allowed": int, "dropped": int, "total": int, "drop_rate": float,
                     "per_key": {key: {"allowed": int, "dropped": int}}}

                A key: that key only (zeros if never seen)::

                    {"key": str, "allowed": int, "dropped": int, "total": int,
                     "drop_rate": float}

        ``drop_rate`` is ``dropped / total`` rounded to 3 places (0.0 when total is 0).
        """
        with self._lock:
            if key is not None:
                allowed, dropped = self._per_key.get(key, (0, 0))
                total = allowed + dropped
                return {
                    "key": key,
                    "allowed": allowed,
                    "dropped": dropped,
                    "total": total,
                    "drop_rate": _drop_rate(dropped, total),
                }
            total = self._allowed + self._dropped
            return {
                "allowed": self._allowed,
                "dropped": self._dropped,
                "total": total,
                "drop_rate": _drop_rate(self._dropped, total),
                "per_key": {
                    k: {"allowed": counts[0], "dropped": counts[1]}
                    for k, counts in self._per_key.items()
                },
            }

    def reset(self, key: Optional[str] = None) -> None:
        """Clear the counters of ``key`` (also removed from the totals), or all of them."""
        with self._lock:
            if key is None:
                self._per_key.clear()
                self._allowed = self._dropped = self._untracked = 0
                return
            counts = self._per_key.pop(key, None)
            if counts is not None:
                self._allowed -= counts[0]
                self._dropped -= counts[1]


class ObservableRateLimiter:
    """A limiter that reports every ``is_allowed`` decision to a :class:`MetricsCollector`.

    Everything else is the wrapped limiter's: attribute reads and writes (``limit``,
    ``window``, ``backend``, ``key_prefix``, ``peek``, ``reset``, ...) go to it. ``peek``
    is not recorded (it decides nothing).

    Args:
        limiter: Any limiter.
        metrics: Where decisions go.
    """

    __slots__ = ("_limiter", "_metrics")

    def __init__(self, limiter: Any, metrics: MetricsCollector) -> None:
        object.__setattr__(self, "_limiter", limiter)
        object.__setattr__(self, "_metrics", metrics)

    @property
    def limit(self) -> int:
        """The wrapped limiter's limit."""
        limit: int = self._limiter.limit
        return limit

    @property
    def window(self) -> float:
        """The wrapped limiter's window in seconds."""
        window: float = self._limiter.window
        return window

    def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        """Decide with the wrapped limiter, then record the result."""
        result: RateLimitResult = self._limiter.is_allowed(key, cost)
        self._metrics.record(key, result)
        return result

    async def is_allowed_async(self, key: str, cost: int = 1) -> RateLimitResult:
        """Await the wrapped limiter's ``is_allowed_async`` (async backends), then record."""
        result: RateLimitResult = await self._limiter.is_allowed_async(key, cost)
        self._metrics.record(key, result)
        return result

    def reset(self, key: str) -> None:
        """Reset ``key`` on the wrapped limiter (metrics are kept)."""
        self._limiter.reset(key)

    def __getattr__(self, name: str) -> Any:
        if name in ("_limiter", "_metrics"):  # not yet set (copy, unpickling)
            raise AttributeError(name)
        return getattr(self._limiter, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._limiter, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(dir(self._limiter)))

    def __repr__(self) -> str:
        return f"ObservableRateLimiter({self._limiter!r}, {self._metrics!r})"
