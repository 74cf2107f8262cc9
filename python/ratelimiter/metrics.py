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

Near-limit alerts ("email users when they reach 80% of their quota")::

    def warn(key: str, result: RateLimitResult) -> None:
        outbox.put((key, result.limit, result.remaining))  # keep it fast: hand it off

    limiter = ObservableRateLimiter(base, metrics, on_near_limit=warn, near_limit_ratio=0.8)

``warn`` is called once when a key's usage crosses the ratio, not on every request after;
see :class:`NearLimitTracker` for exactly when it is called again.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional

from .algorithms.async_base import _sync_limiter
from .result import RateLimitResult

__all__ = [
    "InMemoryMetricsCollector",
    "MetricsCollector",
    "NearLimitCallback",
    "NearLimitTracker",
    "ObservableRateLimiter",
]

_log = logging.getLogger("ratelimiter")

NearLimitCallback = Callable[[str, RateLimitResult], Any]


class MetricsCollector(ABC):
    """Receives the outcome of every decision made through an :class:`ObservableRateLimiter`.

    ``record`` is called on the request path, from any thread: keep it fast and thread-safe.
    """

    @abstractmethod
    def record(self, key: str, result: RateLimitResult) -> None:
        """Record one decision for ``key`` (the key as passed to ``is_allowed``)."""

    def record_near_limit(  # noqa: B027 - an optional hook, deliberately not abstract
        self, key: str, result: RateLimitResult
    ) -> None:
        """Record that ``key`` crossed the near-limit ratio (see :class:`NearLimitTracker`).

        Called by :class:`ObservableRateLimiter` after ``record`` for the same decision, at
        most once per key per window. The default does nothing; a collector that overrides
        it turns near-limit tracking on even without an ``on_near_limit`` callback.
        """


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


def check_near_limit_ratio(ratio: object, param: str = "near_limit_ratio") -> float:
    """``ratio`` as a float in (0, 1]; ``ValueError``/``TypeError`` naming ``param`` if not."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise TypeError(f"{param} must be a number in (0, 1], got {type(ratio).__name__}")
    value = float(ratio)
    if not (0.0 < value <= 1.0):  # also rejects NaN
        raise ValueError(f"{param} must be in (0, 1], got {ratio!r}")
    return value


def check_near_limit_callback(
    callback: object, param: str = "on_near_limit"
) -> Optional[NearLimitCallback]:
    """``callback`` if it is ``None`` or callable; ``TypeError`` naming ``param`` if not."""
    if callback is not None and not callable(callback):
        raise TypeError(
            f"{param} must be a callable (key, result) -> None, got {type(callback).__name__}"
        )
    return callback


class NearLimitTracker:
    """Decides when a key's usage has crossed ``ratio`` of its limit and deserves an alert.

    *Usage* is ``used = result.limit - result.remaining`` of a decision; a decision is *near*
    the limit when ``used >= ratio * limit`` (``ratio=0.8``, ``limit=10``: from the 8th unit
    used). Rejected decisions count too (a rejected key is at least as near as an admitted
    one), so the alert fires even if the crossing request itself is refused.

    **Once per window.** The first near decision for a key fires and arms a *re-arm time*:
    ``now + result.reset_after`` of that decision, the moment the key's quota would be fully
    restored if it sent nothing more. Until then further near decisions for the key are
    silent, whatever happens in between; the first near decision at or after the re-arm time
    fires again. Per algorithm family that means:

    * fixed window: ``reset_after`` is the time to the end of the current window, so at most
      one alert per key per fixed window, and the first crossing in a later window fires;
    * sliding log, sliding-window counter: the time until every counted request has left
      the window (one to two window lengths after the alert);
    * token bucket, leaky bucket, GCRA, adaptive: the time for the bucket to refill (drain)
      completely, one window for a bucket that was empty.

    A key hovering around the ratio (a bucket refilling one token and spending it again)
    is therefore alerted once per such period, not on every oscillation: that is why the
    re-arm is by time and not by "a later decision was below the ratio".

    **Memory.** Only keys that fired and have not yet re-armed are stored (one float each),
    at most ``max_keys`` of them: beyond that the oldest alert is forgotten, which can at
    worst make that key alert again early. Entries are dropped when their key is next seen
    after its re-arm time.

    ``clock`` is the caller's limiter's clock (only differences matter). Thread-safe.

    Args:
        ratio: In (0, 1]; 1 means "alert when the quota is used up".
        max_keys: Most keys remembered at once (an int >= 1).
    """

    __slots__ = ("_factor", "_lock", "_max_keys", "_rearm_at", "ratio")

    def __init__(self, ratio: float = 0.8, max_keys: int = 100_000) -> None:
        self.ratio = check_near_limit_ratio(ratio)
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be an int >= 1, got {max_keys!r}")
        # The small tolerance keeps 0.7 * 10 = 7.000000000000001 from needing an 8th unit.
        self._factor = self.ratio - 1e-9
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._rearm_at: dict[str, float] = {}

    def is_near(self, result: RateLimitResult) -> bool:
        """Whether ``result`` shows usage at or above the ratio."""
        limit = result.limit
        return limit > 0 and limit - result.remaining >= limit * self._factor

    def observe(self, key: str, result: RateLimitResult, clock: Callable[[], float]) -> bool:
        """Record one decision for ``key``; True if an alert is due.

        ``clock`` is read only when it matters (the key is near, or alerted before), so the
        common case, a key far from its limit, costs a comparison and a dict lookup.
        """
        limit = result.limit
        near = limit > 0 and limit - result.remaining >= limit * self._factor
        if not near and key not in self._rearm_at:
            return False
        now = clock()
        with self._lock:
            rearm_at = self._rearm_at.get(key)
            if rearm_at is not None and now < rearm_at:
                return False  # alerted already in this window
            if not near:
                if rearm_at is not None:
                    del self._rearm_at[key]  # re-armed: forget it
                return False
            if rearm_at is not None:
                del self._rearm_at[key]  # re-insert at the end (oldest-first eviction)
            elif len(self._rearm_at) >= self._max_keys:
                del self._rearm_at[next(iter(self._rearm_at))]
            reset_after = result.reset_after
            self._rearm_at[key] = now + (reset_after if math.isfinite(reset_after) else 0.0)
            return True

    def forget(self, key: Optional[str] = None) -> None:
        """Re-arm ``key`` now (e.g. after ``limiter.reset(key)``), or every key."""
        with self._lock:
            if key is None:
                self._rearm_at.clear()
            else:
                self._rearm_at.pop(key, None)

    def __len__(self) -> int:
        """Keys currently remembered (alerted and not yet re-armed)."""
        return len(self._rearm_at)


def clock_of(limiter: Any) -> Callable[[], float]:
    """The clock ``limiter`` decides with (its ``clock=``), else ``time.time`` looked up now.

    An ``AsyncRateLimiter`` is unwrapped. Used so that "now" for near-limit bookkeeping and
    usage reports agrees with the limiter's own time, including fake clocks in tests.
    """
    clock = getattr(_sync_limiter(limiter), "clock", None)
    if callable(clock):
        return clock  # type: ignore[no-any-return]
    return _time_now


def _time_now() -> float:
    return time.time()  # looked up at each call, so patch("time.time") works


def notify_near_limit(callback: NearLimitCallback, key: str, result: RateLimitResult) -> Any:
    """Call ``callback(key, result)``; log and swallow any exception it raises.

    Returns what the callback returned (an awaitable for an ``async def`` callback). An
    alert must never break the decision it is about, so errors are logged on the
    ``"ratelimiter"`` logger (without the key, which may identify a user) and dropped.
    """
    try:
        return callback(key, result)
    except Exception:
        _log.exception("on_near_limit callback %r raised; the decision is unaffected",
                       callback)
        return None


def notify_near_limit_sync(callback: NearLimitCallback, key: str, result: RateLimitResult) -> None:
    """:func:`notify_near_limit` where nothing can be awaited: an awaitable is closed, logged."""
    outcome = notify_near_limit(callback, key, result)
    if inspect.isawaitable(outcome):
        close = getattr(outcome, "close", None)
        if callable(close):
            close()
        _log.error("on_near_limit callback %r is async but was called from synchronous "
                   "code (is_allowed); use a plain function or is_allowed_async", callback)


async def notify_near_limit_async(
    callback: NearLimitCallback, key: str, result: RateLimitResult
) -> None:
    """:func:`notify_near_limit`, awaiting an ``async def`` callback (errors logged too)."""
    outcome = notify_near_limit(callback, key, result)
    if inspect.isawaitable(outcome):
        try:
            await outcome
        except Exception:
            _log.exception("on_near_limit callback %r raised; the decision is unaffected",
                           callback)


class ObservableRateLimiter:
    """A limiter that reports every ``is_allowed`` decision to a :class:`MetricsCollector`,
    and optionally alerts when a key nears its limit.

    Everything else is the wrapped limiter's: attribute reads and writes (``limit``,
    ``window``, ``backend``, ``key_prefix``, ``peek``, ``reset``, ...) go to it. ``peek``
    is not recorded (it decides nothing) and never alerts.

    Args:
        limiter: Any limiter.
        metrics: Where decisions go.
        on_near_limit: ``(key, result) -> None``, called once per key per window when a
            decision shows ``limit - remaining >= near_limit_ratio * limit`` (see
            :class:`NearLimitTracker` for the exact rule per algorithm). It runs on the
            request path after the decision, so keep it fast (queue the e-mail, don't send
            it). An exception it raises is logged on the ``"ratelimiter"`` logger and never
            changes or hides the decision. From ``is_allowed_async`` an ``async def``
            callback is awaited; from ``is_allowed`` it must be a plain function.
        near_limit_ratio: In (0, 1] (default 0.8, i.e. 80 % of the quota used).
        near_limit_max_keys: Most keys remembered between alerts (memory bound).

    Raises:
        TypeError: ``on_near_limit`` not callable, or ``near_limit_ratio`` not a number.
        ValueError: ``near_limit_ratio`` outside (0, 1], bad ``near_limit_max_keys``.
    """

    __slots__ = ("_clock", "_limiter", "_metrics", "_near", "_on_near_limit", "_record_near")
    _clock: Callable[[], float]
    _near: Optional[NearLimitTracker]
    _on_near_limit: Optional[NearLimitCallback]
    _record_near: bool

    def __init__(
        self,
        limiter: Any,
        metrics: MetricsCollector,
        *,
        on_near_limit: Optional[NearLimitCallback] = None,
        near_limit_ratio: float = 0.8,
        near_limit_max_keys: int = 100_000,
    ) -> None:
        tracker = NearLimitTracker(near_limit_ratio, near_limit_max_keys)
        callback = check_near_limit_callback(on_near_limit)
        # Collectors that override record_near_limit (Prometheus) want the events too.
        hook = getattr(type(metrics), "record_near_limit", None)
        wants_events = hook is not None and hook is not MetricsCollector.record_near_limit
        object.__setattr__(self, "_limiter", limiter)
        object.__setattr__(self, "_metrics", metrics)
        object.__setattr__(self, "_clock", clock_of(limiter))
        object.__setattr__(self, "_on_near_limit", callback)
        object.__setattr__(self, "_record_near", wants_events)
        object.__setattr__(
            self, "_near", tracker if callback is not None or wants_events else None
        )

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

    @property
    def near_limit_tracker(self) -> Optional[NearLimitTracker]:
        """The near-limit bookkeeping (``None`` when nothing listens for alerts)."""
        return self._near

    def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        """Decide with the wrapped limiter, record the result, alert if it nears the limit."""
        result: RateLimitResult = self._limiter.is_allowed(key, cost)
        self._metrics.record(key, result)
        if self._near is not None and self._crossed(key, result):
            self._report_near(key, result)
            if self._on_near_limit is not None:
                notify_near_limit_sync(self._on_near_limit, key, result)
        return result

    async def is_allowed_async(self, key: str, cost: int = 1) -> RateLimitResult:
        """Await the wrapped limiter's ``is_allowed_async`` (async backends), then record
        and alert like :meth:`is_allowed` (an ``async def`` callback is awaited)."""
        result: RateLimitResult = await self._limiter.is_allowed_async(key, cost)
        self._metrics.record(key, result)
        if self._near is not None and self._crossed(key, result):
            self._report_near(key, result)
            if self._on_near_limit is not None:
                await notify_near_limit_async(self._on_near_limit, key, result)
        return result

    def acquire(self, key: str, cost: int = 1, timeout: Optional[float] = None
                ) -> RateLimitResult:
        """Wait for quota like the wrapped limiter's ``acquire``, recording every decision
        (a rejection before a wait counts as dropped)."""
        from .client import _waiting

        result: RateLimitResult = _waiting.acquire(self, key, cost, timeout)
        return result

    async def acquire_async(self, key: str, cost: int = 1, timeout: Optional[float] = None
                            ) -> RateLimitResult:
        """:meth:`acquire` for asyncio code."""
        from .client import _waiting

        result: RateLimitResult = await _waiting.acquire_async(self, key, cost, timeout)
        return result

    def _crossed(self, key: str, result: RateLimitResult) -> bool:
        assert self._near is not None
        return self._near.observe(key, result, self._clock)

    def _report_near(self, key: str, result: RateLimitResult) -> None:
        if not self._record_near:
            return
        try:
            self._metrics.record_near_limit(key, result)
        except Exception:
            _log.exception("%r.record_near_limit raised; the decision is unaffected",
                           self._metrics)

    def reset(self, key: str) -> None:
        """Reset ``key`` on the wrapped limiter (metrics are kept; near-limit re-armed)."""
        self._limiter.reset(key)
        if self._near is not None:
            self._near.forget(key)

    def __getattr__(self, name: str) -> Any:
        if name in self.__slots__:  # not yet set (copy, unpickling)
            raise AttributeError(name)
        return getattr(self._limiter, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._limiter, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | set(dir(self._limiter)))

    def __repr__(self) -> str:
        return f"ObservableRateLimiter({self._limiter!r}, {self._metrics!r})"
