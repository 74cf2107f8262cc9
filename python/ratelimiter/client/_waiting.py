"""Waiting for quota: ``acquire`` / ``acquire_async`` for any limiter.

The limiter already computes the exact wait (``retry_after``: when the same request would be
admitted if nobody else consumed), so waiting is: decide, sleep exactly that long, decide
again. There is no polling loop: a waiter sleeps only when a decision told it how long.

**Fairness (first come, first served, within a process).** Waiters for one key of one
limiter form a FIFO queue of tickets. Only the head of the queue decides and sleeps; the
others block on a condition (threads) or an event (tasks) until the head has been admitted
(or has given up). So a thread that called ``acquire`` first is admitted first, and a large
cost at the head is never starved by a stream of small ones behind it: they wait behind it
(head-of-line blocking is the price of no starvation; use separate keys for traffic that
must not wait on each other). Threads and asyncio tasks form separate queues (one per event
loop); they share the budget but not the order. Other processes (e.g. on a shared Redis
store) are not in the queue: when they consume first, the head simply decides again and
sleeps the new ``retry_after``.

**Deadlines.** With ``timeout`` the call never sleeps past its deadline: when the wait a
decision (or the head of the queue ahead) announces ends after the deadline, it raises
:class:`~ratelimiter.exceptions.RateLimitTimeout` at once. A cost the limiter can never
admit (``retry_after == inf``) raises :class:`~ratelimiter.exceptions.RateLimitExceeded`
at once, whatever the timeout.

**Pauses.** :func:`pause` sets a per-key "not before" mark (e.g. from a server's
``Retry-After``): every later ``acquire`` of that key in this process waits until then
before deciding. The mark is process-local.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from ..algorithms.async_base import AsyncRateLimiter, _is_allowed_any
from ..exceptions import (
    ConfigurationError,
    ConfigurationTypeError,
    RateLimitExceeded,
    RateLimitTimeout,
)

__all__ = ["Timer", "acquire", "acquire_async", "pause"]


class Timer:
    """Where waiting reads the time and sleeps; tests substitute a fake one.

    ``monotonic()`` measures deadlines and pauses; ``sleep``/``sleep_async`` wait a number
    of seconds. Waiters behind the head of a queue never use the timer to sleep: they are
    woken by the head, so a fake timer needs no threads of its own.
    """

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


_TIMER = Timer()
_MAX_PAUSES = 10_000
# A wait ending this little after the deadline still counts as within it: float rounding
# in retry_after (e.g. 1.0000000000002 for a 1 s refill) must not fail a 1 s timeout.
_SLACK = 1e-6


def _current_timer(timer: Optional[Timer]) -> Timer:
    return _TIMER if timer is None else timer


class _Queue:
    """One key's waiting threads; guarded by ``cond``."""

    __slots__ = ("cond", "head_wake", "tickets")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.tickets: deque[object] = deque()
        self.head_wake = -math.inf  # when the head's current sleep ends (timer time)


class _AsyncQueue:
    """One key's waiting tasks on one event loop (only touched from that loop)."""

    __slots__ = ("changed", "head_wake", "tickets")

    def __init__(self) -> None:
        self.tickets: deque[object] = deque()
        self.head_wake = -math.inf
        self.changed = asyncio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class _Registry:
    """A limiter's queues and pauses by key, created on demand and dropped when idle, so
    rotating keys cannot grow memory. Lock order: ``lock`` before any queue's ``cond``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, _Queue] = {}
        self.async_queues: dict[tuple[str, int], _AsyncQueue] = {}
        self.pauses: dict[str, float] = {}  # key -> "not before" (timer time)

    def enter(self, key: str, ticket: object) -> _Queue:
        with self.lock:
            queue = self.queues.get(key)
            if queue is None:
                queue = self.queues[key] = _Queue()
            with queue.cond:
                queue.tickets.append(ticket)
            return queue

    def leave(self, key: str, queue: _Queue, ticket: object) -> None:
        with self.lock, queue.cond:
            queue.tickets.remove(ticket)
            queue.head_wake = -math.inf
            queue.cond.notify_all()
            if not queue.tickets and self.queues.get(key) is queue:
                del self.queues[key]

    def paused_for(self, key: str, now: float) -> float:
        """Seconds until ``key``'s pause ends (<= 0: not paused; an ended pause is dropped)."""
        with self.lock:
            not_before = self.pauses.get(key)
            if not_before is None:
                return 0.0
            if not_before <= now:
                del self.pauses[key]
            return not_before - now


_registries: weakref.WeakKeyDictionary[Any, _Registry] = weakref.WeakKeyDictionary()
_strong_registries: dict[int, tuple[Any, _Registry]] = {}  # limiters without weakref support
_registries_lock = threading.Lock()


def _registry(limiter: Any) -> _Registry:
    """``limiter``'s registry: kept on the limiter itself (one attribute read on the hot
    path), or in a weak map for objects that take no attributes."""
    registry: Optional[_Registry] = getattr(limiter, "_waiting_registry", None)
    if registry is not None:
        return registry
    if isinstance(limiter, AsyncRateLimiter):  # share queues and pauses with its limiter
        return _registry(limiter.limiter)
    with _registries_lock:
        existing: Optional[_Registry] = getattr(limiter, "_waiting_registry", None)
        if existing is not None:
            return existing
        try:
            registry = _Registry()
            limiter._waiting_registry = registry
            return registry
        except (AttributeError, TypeError):  # __slots__ or a proxy refusing attributes
            pass
        try:
            registry = _registries.get(limiter)
            if registry is None:
                registry = _registries[limiter] = _Registry()
            return registry
        except TypeError:  # __slots__ without __weakref__, or unhashable: keep it alive
            entry = _strong_registries.get(id(limiter))
            if entry is None or entry[0] is not limiter:
                entry = _strong_registries[id(limiter)] = (limiter, _Registry())
            return entry[1]


def _check_args(key: object, cost: object, timeout: Optional[float]) -> Optional[float]:
    if not isinstance(key, str):
        raise ConfigurationTypeError(f"key must be a str, got {type(key).__name__}")
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigurationTypeError(
            f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ConfigurationError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    return float(timeout)


def _window(limiter: Any) -> float:
    try:
        return float(limiter.window)
    except Exception:  # a user's limiter without a window: only used in the message
        return math.nan


def _never(limiter: Any, key: str, result: Any) -> RateLimitExceeded:
    return RateLimitExceeded(key, result.limit, _window(limiter), math.inf, result)


def _timed_out(limiter: Any, key: str, wait: float, result: Any = None) -> RateLimitTimeout:
    limit = result.limit if result is not None else getattr(limiter, "limit", 0)
    return RateLimitTimeout(key, limit, _window(limiter), wait, result)


def acquire(
    limiter: Any, key: str, cost: Any = 1, timeout: Optional[float] = None,
    *, timer: Optional[Timer] = None,
) -> Any:
    """Block until ``limiter`` admits ``cost`` for ``key``; return the admitting result.

    See the module docstring for order, deadlines and pauses. ``limiter`` is anything with
    ``is_allowed(key, cost)``.

    Raises:
        RateLimitTimeout: not admitted within ``timeout`` seconds (raised as soon as that
            is known, without sleeping until the deadline).
        RateLimitExceeded: ``cost`` can never be admitted (``retry_after`` is ``inf``).
        ConfigurationError: bad ``timeout`` (negative, NaN) or key/cost (from the limiter).
    """
    timeout = _check_args(key, cost, timeout)
    clock = _TIMER if timer is None else timer
    deadline = math.inf if timeout is None else clock.monotonic() + timeout
    registry = _registry(limiter)
    if key not in registry.queues and key not in registry.pauses:
        # Fast path: nobody waits for this key, so deciding at once jumps no queue.
        result = limiter.is_allowed(key, cost)
        if result.allowed:
            return result
    ticket = object()
    queue = registry.enter(key, ticket)
    try:
        with queue.cond:
            while queue.tickets[0] is not ticket:
                now = clock.monotonic()
                if queue.head_wake > deadline or now >= deadline:
                    raise _timed_out(limiter, key, max(0.0, queue.head_wake - now))
                queue.cond.wait(None if deadline == math.inf else deadline - now)
        # At the head: decide, sleep exactly the announced wait, decide again.
        while True:
            now = clock.monotonic()
            paused = registry.paused_for(key, now)
            if paused > 0:
                wait, result = paused, None
            else:
                result = limiter.is_allowed(key, cost)
                if result.allowed:
                    return result
                wait = result.retry_after
                if wait == math.inf:
                    raise _never(limiter, key, result)
                now = clock.monotonic()
            if now + wait > deadline + _SLACK:
                raise _timed_out(limiter, key, wait, result)
            with queue.cond:
                queue.head_wake = now + wait
                queue.cond.notify_all()  # queued waiters with earlier deadlines give up now
            clock.sleep(wait)
    finally:
        registry.leave(key, queue, ticket)


def _async_decider(limiter: Any) -> Callable[[str, Any], Awaitable[Any]]:
    """How to decide from a coroutine without blocking the loop on I/O."""
    native = getattr(limiter, "is_allowed_async", None)
    if callable(native):
        return native  # type: ignore[no-any-return]
    if isinstance(limiter, AsyncRateLimiter):
        return limiter.is_allowed

    async def decide(key: str, cost: Any) -> Any:
        return await _is_allowed_any(limiter, key, cost)

    return decide


async def acquire_async(
    limiter: Any, key: str, cost: Any = 1, timeout: Optional[float] = None,
    *, timer: Optional[Timer] = None,
) -> Any:
    """:func:`acquire` for asyncio code: the event loop is never blocked (the decision is
    awaited or run in an executor, and waits are ``asyncio.sleep``). Tasks of one event
    loop are served in arrival order. Cancelling the awaiting task leaves the queue."""
    timeout = _check_args(key, cost, timeout)
    clock = _current_timer(timer)
    deadline = math.inf if timeout is None else clock.monotonic() + timeout
    decide = _async_decider(limiter)
    registry = _registry(limiter)
    loop_key = (key, id(asyncio.get_running_loop()))
    if loop_key not in registry.async_queues and key not in registry.pauses:
        result = await decide(key, cost)  # fast path: nobody waits for this key here
        if result.allowed:
            return result
    with registry.lock:
        queue = registry.async_queues.get(loop_key)
        if queue is None:
            queue = registry.async_queues[loop_key] = _AsyncQueue()
    ticket = object()
    queue.tickets.append(ticket)
    try:
        while queue.tickets[0] is not ticket:
            now = clock.monotonic()
            if queue.head_wake > deadline or now >= deadline:
                raise _timed_out(limiter, key, max(0.0, queue.head_wake - now))
            changed = queue.changed
            if deadline == math.inf:
                await changed.wait()
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), deadline - now)
        while True:
            now = clock.monotonic()
            paused = registry.paused_for(key, now)
            if paused > 0:
                wait, result = paused, None
            else:
                result = await decide(key, cost)
                if result.allowed:
                    return result
                wait = result.retry_after
                if wait == math.inf:
                    raise _never(limiter, key, result)
                now = clock.monotonic()
            if now + wait > deadline + _SLACK:
                raise _timed_out(limiter, key, wait, result)
            queue.head_wake = now + wait
            queue.notify()
            await clock.sleep_async(wait)
    finally:
        queue.tickets.remove(ticket)
        queue.head_wake = -math.inf
        queue.notify()
        with registry.lock:
            if not queue.tickets and registry.async_queues.get(loop_key) is queue:
                del registry.async_queues[loop_key]


def pause(limiter: Any, key: str, seconds: float, *, timer: Optional[Timer] = None) -> None:
    """Make every ``acquire`` of ``key`` on ``limiter`` in this process wait ``seconds``
    from now before deciding (a server said "Retry-After"). A later, shorter pause never
    shortens an earlier, longer one."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) \
            or not math.isfinite(seconds):
        raise ConfigurationError(f"seconds must be a finite number, got {seconds!r}")
    if seconds <= 0:
        return
    clock = _current_timer(timer)
    registry = _registry(limiter)
    with registry.lock:
        now = clock.monotonic()
        if len(registry.pauses) >= _MAX_PAUSES:  # bounded: drop the pauses that have ended
            registry.pauses = {k: t for k, t in registry.pauses.items() if t > now}
        registry.pauses[key] = max(registry.pauses.get(key, -math.inf), now + seconds)


# -- pauses shared through the limiter's store (opt-in, used by the HTTP adapters) ---------


def _pause_storage_key(limiter: Any, key: str) -> str:
    return f"{getattr(limiter, 'key_prefix', '')}client-pause:{key}"


def share_pause(limiter: Any, key: str, seconds: float) -> bool:
    """Record "nobody calls ``key`` for ``seconds``" in ``limiter``'s store, for every
    process and host using it (wall-clock time, so hosts' clock skew shifts it by that
    much). One ``SET`` with a TTL: the last writer wins (no read-modify-write). Returns
    False when the limiter's backend has no ``set``."""
    backend = getattr(limiter, "backend", None)
    if backend is None or not callable(getattr(backend, "set", None)) or seconds <= 0:
        return False
    backend.set(_pause_storage_key(limiter, key), time.time() + seconds, ttl=seconds + 1.0)
    return True


def shared_pause_left(limiter: Any, key: str) -> float:
    """Seconds left of a pause another process shared for ``key`` (0 if none). One ``GET``."""
    backend = getattr(limiter, "backend", None)
    if backend is None or not callable(getattr(backend, "get", None)):
        return 0.0
    until = backend.get(_pause_storage_key(limiter, key))
    if not isinstance(until, (int, float)) or isinstance(until, bool):
        return 0.0
    left = float(until) - time.time()
    return left if math.isfinite(left) and left > 0 else 0.0
