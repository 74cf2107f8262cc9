"""``Throttle``: rate and in-flight concurrency around any call, sync or async."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import weakref
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar, cast

from ..exceptions import ConfigurationError, ConfigurationTypeError
from . import _waiting

__all__ = ["Throttle"]

F = TypeVar("F", bound=Callable[..., Any])


def _check_concurrency(value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationTypeError(
            f"max_concurrency must be a positive int or None, got {type(value).__name__}")
    if value < 1:
        raise ConfigurationError(f"max_concurrency must be >= 1, got {value}")
    return value


class Throttle:
    """Wait for quota (and, optionally, a free concurrency slot) before a block or call.

    ::

        throttle = Throttle(limiter, "api.example.com", max_concurrency=10)

        with throttle:              # threads
            call_api()

        async with throttle:        # tasks
            await call_api_async()

        @throttle                   # a function (sync or async)
        def call_api(): ...

    On entry it first takes a concurrency slot (at most ``max_concurrency`` blocks run at
    once), then waits for the rate with ``limiter.acquire(key, cost, timeout)`` (exact
    sleeps, first come first served); the slot is released when the block exits. Taking
    the slot first means quota is consumed only right before the call runs. Threads and
    tasks have separate slot pools (a ``threading`` semaphore and one ``asyncio`` semaphore
    per event loop). ``timeout`` bounds the rate wait (``RateLimitTimeout``), not the
    wait for a slot.

    Args:
        limiter: Any limiter (``MultiRateLimiter`` too, with a dict ``cost``).
        key: The key charged.
        cost: Units per entry.
        max_concurrency: Most blocks in flight at once (``None``: no bound).
        timeout: Most seconds to wait for the rate (``None``: forever).
    """

    def __init__(
        self, limiter: Any, key: str, *, cost: Any = 1, max_concurrency: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> None:
        if not callable(getattr(limiter, "is_allowed", None)):
            raise ConfigurationTypeError(
                f"limiter must have is_allowed(), got {type(limiter).__name__}")
        if not isinstance(key, str):
            raise ConfigurationTypeError(f"key must be a str, got {type(key).__name__}")
        _waiting._check_args(key, cost, timeout)
        self.limiter = limiter
        self.key = key
        self.cost = cost
        self.timeout = timeout
        self.max_concurrency = _check_concurrency(max_concurrency)
        self._slots = (threading.BoundedSemaphore(self.max_concurrency)
                       if self.max_concurrency is not None else None)
        self._async_slots: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    # -- sync -------------------------------------------------------------------------
    def __enter__(self) -> Any:
        if self._slots is not None:
            self._slots.acquire()
        try:
            return _waiting.acquire(self.limiter, self.key, self.cost, self.timeout)
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def __exit__(self, exc_type: Optional[type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if self._slots is not None:
            self._slots.release()

    # -- async ------------------------------------------------------------------------
    def _async_semaphore(self) -> Optional[asyncio.Semaphore]:
        if self.max_concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        with self._lock:
            semaphore = self._async_slots.get(loop)
            if semaphore is None:
                semaphore = self._async_slots[loop] = asyncio.Semaphore(self.max_concurrency)
            return semaphore

    async def __aenter__(self) -> Any:
        semaphore = self._async_semaphore()
        if semaphore is not None:
            await semaphore.acquire()
        try:
            return await _waiting.acquire_async(self.limiter, self.key, self.cost, self.timeout)
        except BaseException:
            if semaphore is not None:
                semaphore.release()
            raise

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        semaphore = self._async_semaphore()
        if semaphore is not None:
            semaphore.release()

    # -- decorator --------------------------------------------------------------------
    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return cast(F, wrapper)

    def __repr__(self) -> str:
        return (f"Throttle({self.limiter!r}, {self.key!r}, cost={self.cost!r}, "
                f"max_concurrency={self.max_concurrency})")
