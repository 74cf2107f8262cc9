"""Awaitable limiters for asyncio code.

:class:`AsyncRateLimiter` wraps any limiter and never blocks the event loop on I/O:

* on a :class:`~ratelimiter.backends.memory.MemoryBackend` the decision is made directly on
  the loop (it takes microseconds; a thread hop would cost more than the decision);
* on a backend with ``is_async = True`` (``AsyncRedisBackend``) the limiter's own
  ``is_allowed_async`` coroutine is awaited;
* on any other backend (SQLite, sync Redis, a user's ``BaseBackend``) the call runs in an
  executor thread (``executor=``, default: the loop's default executor).

Usage::

    from ratelimiter import AsyncRateLimiter, MemoryBackend, TokenBucketRateLimiter

    limiter = AsyncRateLimiter(TokenBucketRateLimiter(MemoryBackend(), limit=10, window=1))
    result = await limiter.is_allowed("user:42")
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any, Callable, Optional, TypeVar, Union, cast

from .._protocols import SyncLimiter
from ..exceptions import RateLimitExceeded
from ..result import RateLimitResult
from .base import batch_keys, never_blocks

__all__ = ["AsyncRateLimiter", "async_rate_limit"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_DIRECT, _NATIVE_ASYNC, _EXECUTOR = 0, 1, 2


def _dispatch_mode(limiter: object) -> int:
    """How to call ``limiter`` from a coroutine (see the module docstring)."""
    backend = getattr(limiter, "backend", None)
    if getattr(backend, "is_async", False) is True:
        return _NATIVE_ASYNC
    if never_blocks(backend):
        return _DIRECT
    return _EXECUTOR


async def _in_executor(executor: Optional[Executor], func: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(executor, func)


async def _native(limiter: object, name: str, *args: Any) -> Any:
    method = getattr(limiter, name, None)
    if method is None:
        raise TypeError(
            f"{type(limiter).__name__} has an async backend but no {name}() coroutine"
        )
    return await method(*args)


async def _decide(
    limiter: SyncLimiter, mode: int, executor: Optional[Executor], key: str, cost: int
) -> RateLimitResult:
    if mode == _DIRECT:
        return limiter.is_allowed(key, cost)
    if mode == _NATIVE_ASYNC:
        return cast(RateLimitResult, await _native(limiter, "is_allowed_async", key, cost))
    return await _in_executor(executor, functools.partial(limiter.is_allowed, key, cost))


class AsyncRateLimiter:
    """Async face of any limiter: ``await is_allowed(key, cost)``, ``await reset(key)``.

    Args:
        limiter: A limiter (any of the seven, an ``ObservableRateLimiter``, or an object with
            ``is_allowed``/``reset``/``limit``/``window``); an ``AsyncRateLimiter`` is unwrapped.
        executor: Where blocking backends run (``concurrent.futures.Executor``); ``None``
            uses the running loop's default executor.

    Thread-safety: as safe as the wrapped limiter (all built-in ones are).
    """

    def __init__(
        self, limiter: Union[SyncLimiter, AsyncRateLimiter], executor: Optional[Executor] = None
    ) -> None:
        if isinstance(limiter, AsyncRateLimiter):
            limiter = limiter.limiter
        if not callable(getattr(limiter, "is_allowed", None)):
            raise TypeError(f"limiter must have is_allowed(), got {type(limiter).__name__}")
        self._limiter = limiter
        self._executor = executor
        self._mode = _dispatch_mode(limiter)

    @property
    def limiter(self) -> SyncLimiter:
        """The wrapped limiter."""
        return self._limiter

    @property
    def executor(self) -> Optional[Executor]:
        """The executor used for blocking backends (``None``: the loop's default)."""
        return self._executor

    @property
    def backend(self) -> Any:
        """The wrapped limiter's backend (``None`` if it has none)."""
        return getattr(self._limiter, "backend", None)

    @property
    def limit(self) -> int:
        """The wrapped limiter's current limit."""
        return self._limiter.limit

    @property
    def window(self) -> float:
        """The wrapped limiter's current window in seconds."""
        return self._limiter.window

    async def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        """Decide one request of ``cost`` for ``key`` without blocking the event loop."""
        return await _decide(self._limiter, self._mode, self._executor, key, cost)

    async def is_allowed_many(self, keys: Iterable[str], cost: int = 1) -> list[RateLimitResult]:
        """Decide one request of ``cost`` per key, in order, without blocking the event loop.

        On an ``AsyncRedisBackend`` the whole batch is one pipeline (one round trip; one per
        node on a cluster); elsewhere the limiter's ``is_allowed_many`` runs once (directly
        on a store that never blocks, else in the executor), key by key for a limiter that
        has none. Every key is validated before any is decided.
        """
        batch = batch_keys(keys)
        limiter = self._limiter
        if self._mode == _NATIVE_ASYNC:
            return cast(list[RateLimitResult],
                        await _native(limiter, "is_allowed_many_async", batch, cost))
        many = getattr(limiter, "is_allowed_many", None)
        call: Callable[[], list[RateLimitResult]] = (
            functools.partial(many, batch, cost) if callable(many)
            else lambda: [limiter.is_allowed(key, cost) for key in batch])
        if self._mode == _DIRECT:
            return call()
        return await _in_executor(self._executor, call)

    async def peek(self, key: str) -> RateLimitResult:
        """``key``'s state as a cost-1 decision, consuming nothing (if the limiter has peek)."""
        mode = self._mode
        if mode == _NATIVE_ASYNC:
            return cast(RateLimitResult, await _native(self._limiter, "peek_async", key))
        peek = cast(Callable[[str], RateLimitResult], getattr(self._limiter, "peek"))  # noqa: B009
        if mode == _DIRECT:
            return peek(key)
        return await _in_executor(self._executor, functools.partial(peek, key))

    async def acquire_async(
        self, key: str, cost: int = 1, timeout: Optional[float] = None
    ) -> RateLimitResult:
        """Wait (without blocking the loop) until ``cost`` is admitted for ``key``.

        Sleeps exactly each ``retry_after``; tasks are served in arrival order. Raises
        ``RateLimitTimeout`` after ``timeout`` seconds, ``RateLimitExceeded`` at once for a
        cost above capacity. See :mod:`ratelimiter.client`.
        """
        from ..client import _waiting

        result: RateLimitResult = await _waiting.acquire_async(self, key, cost, timeout)
        return result

    async def acquire(
        self, key: str, cost: int = 1, timeout: Optional[float] = None
    ) -> RateLimitResult:
        """Same as :meth:`acquire_async` (every method of this class is awaitable)."""
        return await self.acquire_async(key, cost, timeout)

    async def reset(self, key: str) -> None:
        """Forget ``key``'s state without blocking the event loop."""
        mode = self._mode
        if mode == _DIRECT:
            self._limiter.reset(key)
        elif mode == _NATIVE_ASYNC:
            await _native(self._limiter, "reset_async", key)
        else:
            await _in_executor(self._executor, functools.partial(self._limiter.reset, key))

    def __repr__(self) -> str:
        return f"AsyncRateLimiter({self._limiter!r})"


AnyLimiter = Union[SyncLimiter, AsyncRateLimiter]


async def _is_allowed_any(
    limiter: AnyLimiter, key: str, cost: int, executor: Optional[Executor] = None
) -> RateLimitResult:
    """Decide with any limiter from a coroutine, choosing the call path on each call."""
    if isinstance(limiter, AsyncRateLimiter):
        return await limiter.is_allowed(key, cost)
    return await _decide(limiter, _dispatch_mode(limiter), executor, key, cost)


def _sync_limiter(limiter: AnyLimiter) -> SyncLimiter:
    """The synchronous limiter behind ``limiter`` (an AsyncRateLimiter is unwrapped)."""
    return limiter.limiter if isinstance(limiter, AsyncRateLimiter) else limiter


def _as_async(limiter: AnyLimiter) -> AsyncRateLimiter:
    """``limiter`` itself if it is an :class:`AsyncRateLimiter`, else a wrapper around it."""
    if isinstance(limiter, AsyncRateLimiter):
        return limiter
    return AsyncRateLimiter(limiter)


def _default_key(func: Callable[..., Any]) -> str:
    """A function's ``__qualname__`` (a callable object's class name if it has none)."""
    name = getattr(func, "__qualname__", None)
    return name if isinstance(name, str) else type(func).__qualname__


def _resolve_key(
    key: Optional[str],
    key_func: Optional[Callable[..., str]],
    default: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str:
    if key_func is not None:
        return key_func(*args, **kwargs)
    return default if key is None else key


def _exceeded(key: str, result: RateLimitResult, window: float) -> RateLimitExceeded:
    return RateLimitExceeded(
        key=key, limit=result.limit, window=window, retry_after=result.retry_after,
        result=result,
    )


def async_rate_limit(
    limiter: AnyLimiter,
    key: Optional[str] = None,
    key_func: Optional[Callable[..., str]] = None,
    cost: int = 1,
    raise_on_limit: bool = True,
) -> Callable[[F], F]:
    """Rate-limit an ``async def`` function; the check runs when the call is awaited.

    Args:
        limiter: An :class:`AsyncRateLimiter` or any limiter (wrapped automatically).
        key: Static key; default the function's ``__qualname__``. Exclusive with
            ``key_func``.
        key_func: Called with the function's ``(*args, **kwargs)``, returns the key.
        cost: Units consumed per call.
        raise_on_limit: ``True``: raise
            :class:`~ratelimiter.exceptions.RateLimitExceeded`; ``False``: return ``None``
            without calling the function.

    The wrapper has a ``limiter`` attribute (the limiter passed in).

    Raises:
        ValueError: if both ``key`` and ``key_func`` are given.
    """
    if key is not None and key_func is not None:
        raise ValueError("Specify at most one of 'key' or 'key_func'.")
    checker = _as_async(limiter)

    def decorator(func: F) -> F:
        default_key = _default_key(func)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            effective_key = _resolve_key(key, key_func, default_key, args, kwargs)
            result = await checker.is_allowed(effective_key, cost)
            if not result.allowed:
                if raise_on_limit:
                    raise _exceeded(effective_key, result, checker.window)
                return None
            value = func(*args, **kwargs)
            if inspect.isawaitable(value):
                return await value
            return value

        wrapper.limiter = limiter  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator
