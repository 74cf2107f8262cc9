"""Decorator and context manager: the highest-level way to rate-limit Python code.

::

    from ratelimiter import MemoryBackend, TokenBucketRateLimiter, rate_limit

    limiter = TokenBucketRateLimiter(MemoryBackend(), limit=10, window=1)

    @rate_limit(limiter, key_func=lambda user_id, **_: f"user:{user_id}")
    def fetch(user_id: str) -> dict: ...

    @rate_limit(limiter)                      # async def works too: checked when awaited
    async def fetch_async() -> dict: ...

    with RateLimitContext(limiter, "user:42") as ctx:   # or: async with
        print(ctx.result.remaining)
"""

from __future__ import annotations

import functools
import inspect
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar, cast

from .algorithms.async_base import (
    AnyLimiter,
    _as_async,
    _default_key,
    _exceeded,
    _resolve_key,
    _sync_limiter,
    async_rate_limit,
)
from .exceptions import RateLimitExceeded
from .result import RateLimitResult

__all__ = ["RateLimitContext", "rate_limit"]

F = TypeVar("F", bound=Callable[..., Any])


def rate_limit(
    limiter: AnyLimiter,
    key: Optional[str] = None,
    key_func: Optional[Callable[..., str]] = None,
    cost: int = 1,
    raise_on_limit: bool = True,
    *,
    wait: bool = False,
    timeout: Optional[float] = None,
) -> Callable[[F], F]:
    """Rate-limit every call of the decorated function.

    Works on plain functions and on ``async def`` functions (the check then happens when
    the call is awaited, without blocking the event loop on I/O; see
    :class:`~ratelimiter.algorithms.async_base.AsyncRateLimiter`).

    Args:
        limiter: Any limiter (or an ``AsyncRateLimiter``).
        key: Static key for all callers; default the function's ``__qualname__``.
        key_func: Called with the function's ``(*args, **kwargs)``; returns the key.
        cost: Units consumed per call.
        raise_on_limit: ``True`` (default): a rejected call raises
            :class:`~ratelimiter.exceptions.RateLimitExceeded` (with ``key``, ``limit``,
            ``window``, ``retry_after`` and ``result``). ``False``: the function is not
            called and the call returns ``None`` (an awaitable of ``None`` for coroutines).
        wait: ``True``: a call over the limit waits for quota (``limiter.acquire``: exact
            sleeps, first come first served; ``asyncio.sleep`` for ``async def``) instead of
            being refused.
        timeout: With ``wait``, the most seconds to wait; then
            :class:`~ratelimiter.exceptions.RateLimitTimeout` is raised (or ``None``
            returned with ``raise_on_limit=False``). A cost above the capacity fails at once.

    The wrapper exposes the limiter as ``wrapper.limiter``.

    Raises:
        ValueError: if both ``key`` and ``key_func`` are given.
    """
    if key is not None and key_func is not None:
        raise ValueError("Specify at most one of 'key' or 'key_func'.")
    if wait:
        return _waiting_decorator(limiter, key, key_func, cost, raise_on_limit, timeout)
    if timeout is not None:
        raise ValueError("timeout= applies only with wait=True")

    def decorator(func: F) -> F:
        default_key = _default_key(func)
        if inspect.iscoroutinefunction(func):
            # Checked when awaited, exactly as async_rate_limit does.
            return async_rate_limit(
                limiter, key=key, key_func=key_func, cost=cost, raise_on_limit=raise_on_limit
            )(func)

        sync = _sync_limiter(limiter)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            effective_key = _resolve_key(key, key_func, default_key, args, kwargs)
            result = sync.is_allowed(effective_key, cost)
            if not result.allowed:
                if raise_on_limit:
                    raise _exceeded(effective_key, result, sync.window)
                return None
            return func(*args, **kwargs)

        wrapper.limiter = limiter  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator


def _waiting_decorator(
    limiter: AnyLimiter,
    key: Optional[str],
    key_func: Optional[Callable[..., str]],
    cost: int,
    raise_on_limit: bool,
    timeout: Optional[float],
) -> Callable[[F], F]:
    """``rate_limit(..., wait=True)``: wait for quota before each call."""
    from .client import _waiting

    _waiting._check_args("", cost, timeout)

    def decorator(func: F) -> F:
        default_key = _default_key(func)

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                effective_key = _resolve_key(key, key_func, default_key, args, kwargs)
                try:
                    await _waiting.acquire_async(limiter, effective_key, cost, timeout)
                except RateLimitExceeded:
                    if raise_on_limit:
                        raise
                    return None
                return await func(*args, **kwargs)

            async_wrapper.limiter = limiter  # type: ignore[attr-defined]
            return cast(F, async_wrapper)

        sync = _sync_limiter(limiter)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            effective_key = _resolve_key(key, key_func, default_key, args, kwargs)
            try:
                _waiting.acquire(sync, effective_key, cost, timeout)
            except RateLimitExceeded:
                if raise_on_limit:
                    raise
                return None
            return func(*args, **kwargs)

        wrapper.limiter = limiter  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator


class RateLimitContext:
    """Check a limit on entry to a ``with`` (or ``async with``) block.

    The decision is made on ``__enter__``/``__aenter__``; it is available as ``.result``.
    A rejection raises :class:`~ratelimiter.exceptions.RateLimitExceeded` before the body
    runs. Leaving the block does not give the quota back.

    Args:
        limiter: Any limiter (or an ``AsyncRateLimiter``).
        key: The key to charge.
        cost: Units consumed.

    ::

        with RateLimitContext(limiter, key="user:42") as ctx:
            do_work()

        async with RateLimitContext(limiter, key="user:42"):
            await do_work()
    """

    def __init__(self, limiter: AnyLimiter, key: str, cost: int = 1) -> None:
        self.limiter = limiter
        self.key = key
        self.cost = cost
        self.result: Optional[RateLimitResult] = None

    def _check(self, result: RateLimitResult, window: float) -> None:
        self.result = result
        if not result.allowed:
            raise _exceeded(self.key, result, window)

    def __enter__(self) -> RateLimitContext:
        sync = _sync_limiter(self.limiter)
        self._check(sync.is_allowed(self.key, self.cost), sync.window)
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None

    async def __aenter__(self) -> RateLimitContext:
        checker = _as_async(self.limiter)
        self._check(await checker.is_allowed(self.key, self.cost), checker.window)
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        return None
