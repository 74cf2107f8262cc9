"""Runtime configuration for limiters: change ``limit`` and ``window`` without a restart.

Attach a :class:`ConfigProvider` to any limiter with ``config_provider=``; the limiter reads
it on every call, so a change takes effect on the next decision (derived rates such as a
token bucket's default refill rate ``limit / window`` follow the new values)::

    from ratelimiter import DynamicConfig, MemoryBackend, SlidingWindowRateLimiter

    cfg = DynamicConfig(limit=100, window=60)
    limiter = SlidingWindowRateLimiter(MemoryBackend(), 100, 60, config_provider=cfg)
    cfg.update(limit=200)  # the next is_allowed() admits up to 200 per minute
"""

from __future__ import annotations

import math
import threading
from typing import Optional, Protocol, runtime_checkable

from .exceptions import ConfigurationError, ConfigurationTypeError

__all__ = ["ConfigProvider", "DynamicConfig"]


@runtime_checkable
class ConfigProvider(Protocol):
    """Anything with ``get_limit()`` and ``get_window()``; no subclassing needed.

    Both methods are called on every decision, so they must be fast and thread-safe.
    """

    def get_limit(self) -> int:
        """The current number of requests admitted per window."""
        ...

    def get_window(self) -> float:
        """The current window length in seconds."""
        ...


def _check_limit(limit: object) -> int:
    """Return ``limit`` if it is a positive ``int`` (``bool`` rejected), else raise."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ConfigurationTypeError(
            f"limit must be a positive int, got {type(limit).__name__} {limit!r}"
        )
    if limit <= 0:
        raise ConfigurationError(f"limit must be a positive int, got {limit!r}")
    return limit


def _check_window(window: object) -> float:
    """Return ``window`` as a float if it is a finite number > 0 (``bool`` rejected)."""
    if isinstance(window, bool) or not isinstance(window, (int, float)):
        raise ConfigurationTypeError(
            f"window must be a finite number > 0, got {type(window).__name__} {window!r}"
        )
    value = float(window)
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"window must be a finite number > 0, got {window!r}")
    return value


class DynamicConfig:
    """A thread-safe, mutable :class:`ConfigProvider`.

    Share one instance between any number of limiters and call :meth:`update` from any
    thread; every attached limiter uses the new values from its next call. Reads are
    lock-free: ``(limit, window)`` is one immutable pair swapped atomically, so a reader never
    sees a new limit with an old window from the same update.

    Args:
        limit: Requests per window, a positive ``int``.
        window: Window length in seconds, a finite number > 0.

    Raises:
        ValueError: (:class:`~ratelimiter.exceptions.ConfigurationError`) naming the
            parameter, for a non-positive, non-finite or wrongly typed value.
    """

    __slots__ = ("_lock", "_values")

    def __init__(self, limit: int, window: float) -> None:
        self._lock = threading.Lock()
        self._values: tuple[int, float] = (_check_limit(limit), _check_window(window))

    def get_limit(self) -> int:
        """The current limit."""
        return self._values[0]

    def get_window(self) -> float:
        """The current window in seconds."""
        return self._values[1]

    def snapshot(self) -> tuple[int, float]:
        """``(limit, window)`` from one consistent update."""
        return self._values

    def update(self, limit: Optional[int] = None, window: Optional[float] = None) -> None:
        """Change the limit and/or the window; ``None`` keeps the current value.

        Both values are validated before either is applied, so a rejected update changes
        nothing.

        Raises:
            ValueError: (:class:`~ratelimiter.exceptions.ConfigurationError`) naming the
                invalid parameter.
        """
        new_limit = None if limit is None else _check_limit(limit)
        new_window = None if window is None else _check_window(window)
        with self._lock:
            old_limit, old_window = self._values
            self._values = (
                old_limit if new_limit is None else new_limit,
                old_window if new_window is None else new_window,
            )

    def __repr__(self) -> str:
        limit, window = self._values
        return f"DynamicConfig(limit={limit}, window={window})"
