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

import threading
from typing import Optional, Protocol, runtime_checkable

from . import _core

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


def _validate(limit: object, window: object) -> tuple[int, float]:
    """``(limit, window)`` checked by the core exactly as a limiter checks them, else raise.

    One rule set for the constructor, :meth:`DynamicConfig.update` and every decision: the
    conversions a limiter's constructor applies, then each algorithm's own parameter check,
    so a pair accepted here is accepted by any limiter the config is attached to (including
    derived values such as ``limit / window``, which must stay finite).
    """
    validated: tuple[int, float] = _core.validate_limit_window(limit, window)
    return validated


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
            parameter, for a value any limiter would reject: a limit that is not an int in
            ``[1, 2**52]``, a window that is not a finite number > 0 (an int too large for a
            float included), or a pair whose derived rate ``limit / window`` or interval
            ``window / limit`` is not a finite number > 0.
    """

    __slots__ = ("_lock", "_values")

    def __init__(self, limit: int, window: float) -> None:
        self._lock = threading.Lock()
        self._values: tuple[int, float] = _validate(limit, window)

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

        The resulting pair is validated (as in the constructor) before it is applied, so a
        rejected update changes nothing and keeps the old values.

        Raises:
            ValueError: (:class:`~ratelimiter.exceptions.ConfigurationError`) naming the
                invalid parameter.
        """
        with self._lock:
            old_limit, old_window = self._values
            # The pair is checked as a whole: a new limit is judged with the current window.
            self._values = _validate(
                old_limit if limit is None else limit,
                old_window if window is None else window,
            )

    def __repr__(self) -> str:
        limit, window = self._values
        return f"DynamicConfig(limit={limit}, window={window})"
