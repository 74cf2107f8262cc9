"""The limiter interface and the native-backed limiter base (and, re-exported from
:mod:`ratelimiter.result`, the decision result)."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Callable, ClassVar, Literal, Optional, Union, overload

from ..backends.base import BaseBackend
from ..config import ConfigProvider
from ..exceptions import BackendError, ConfigurationTypeError
from ..result import RateLimitResult, _rebuild_result  # noqa: F401 - old pickles name it here

__all__ = ["BaseAlgorithm", "RateLimitResult"]

_waiting: Any = None  # ratelimiter.client._waiting, imported on first use (it imports us)


def _load_waiting() -> Any:
    global _waiting
    from ..client import _waiting as module

    _waiting = module
    return module


def never_blocks(backend: object) -> bool:
    """Whether asyncio code may decide on ``backend`` directly on the event loop."""
    return getattr(backend, "never_blocks", False) is True


async def run_off_loop(backend: object, func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` for a coroutine: directly when ``backend`` never blocks, else in the
    loop's default executor, so I/O never stalls the event loop."""
    if never_blocks(backend):
        return func(*args)
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


def batch_keys(keys: Iterable[str]) -> Sequence[str]:
    """``keys`` as one list or tuple for a batch call into C++.

    A single ``str`` (or ``bytes``) is a ``TypeError``, not a sequence of one-character keys.
    """
    if isinstance(keys, (str, bytes, bytearray)):
        raise ConfigurationTypeError(
            f"keys must be an iterable of str, not a single {type(keys).__name__} "
            "(use is_allowed for one key)"
        )
    return keys if isinstance(keys, (list, tuple)) else list(keys)


def _check_detail(detail: object) -> None:
    """``detail`` must be a real bool (as the native limiters require)."""
    if not isinstance(detail, bool):
        raise ConfigurationTypeError(f"detail must be a bool, got {type(detail).__name__}")


def collect_batch(on_error: str, replies: Sequence[Any], read: Callable[[int, list[Any]], Any],
                  fallback: Callable[[int], Any]) -> list[Any]:
    """Each key's result from an async Redis batch, as RedisStore::decide_many does it:
    reply ``i`` is read by ``read(i, parts)``; a key whose call failed gets ``fallback(i)``
    (the ``on_error`` answer), or under ``"raise"`` the first such error is raised once
    every reply has been read (the others were decided by Redis all the same)."""
    results: list[Any] = []
    first_error: Optional[BaseException] = None
    for i, reply in enumerate(replies):
        if isinstance(reply, BaseException):
            if on_error == "raise":
                first_error = first_error or reply
            else:
                results.append(fallback(i))
            continue
        results.append(read(i, [reply] if isinstance(reply, (bytes, str)) else list(reply)))
    if first_error is not None:
        raise first_error
    return results


class BaseAlgorithm(ABC):
    """What every limiter offers. Subclass it to write your own algorithm."""

    backend: BaseBackend
    key_prefix: str

    @property
    @abstractmethod
    def limit(self) -> int:
        """Requests admitted per window (the current value, with a config provider)."""

    @property
    @abstractmethod
    def window(self) -> float:
        """Window length in seconds (the current value, with a config provider)."""

    @abstractmethod
    def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        """Decide one request of ``cost`` units for ``key``, consuming quota if admitted."""

    @abstractmethod
    def reset(self, key: str) -> None:
        """Forget ``key``'s state: its next request starts with a full quota."""

    def peek(self, key: str) -> RateLimitResult:
        """Decide a cost-1 request for ``key`` without consuming anything."""
        raise NotImplementedError(f"{type(self).__name__} does not support peek()")

    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: Literal[True] = ...) -> list[RateLimitResult]: ...
    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: Literal[False]) -> list[bool]: ...
    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: bool) -> Union[list[RateLimitResult], list[bool]]: ...

    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: bool = True) -> Union[list[RateLimitResult], list[bool]]:
        """Decide one request per key, in order.

        With ``detail=False`` the answer is one bool per key (``result.allowed``), which
        native limiters compute without building a result object per key.
        """
        _check_detail(detail)
        results = [self.is_allowed(key, cost) for key in keys]
        return results if detail else [r.allowed for r in results]

    def acquire(self, key: str, cost: int = 1, timeout: Optional[float] = None) -> RateLimitResult:
        """Block until ``cost`` is admitted for ``key``, sleeping exactly each ``retry_after``.

        Waiters of one key are served first come, first served within the process.

        Raises:
            RateLimitTimeout: not admitted within ``timeout`` seconds (raised as soon as
                the wait is known to end after it).
            RateLimitExceeded: ``cost`` exceeds the capacity (waiting cannot help).

        See :mod:`ratelimiter.client` ("Calling rate-limited APIs" in the README).
        """
        result: RateLimitResult = (_waiting or _load_waiting()).acquire(self, key, cost, timeout)
        return result

    async def acquire_async(
        self, key: str, cost: int = 1, timeout: Optional[float] = None
    ) -> RateLimitResult:
        """:meth:`acquire` for asyncio code; never blocks the event loop."""
        waiting = _waiting or _load_waiting()
        result: RateLimitResult = await waiting.acquire_async(self, key, cost, timeout)
        return result


class NativeRateLimiter(BaseAlgorithm):
    """A limiter whose decisions run in the C++ core, on any backend.

    Built-in backends run each step atomically inside the store; a user's ``BaseBackend``
    subclass gets the same step through its ``get``/``set`` (see ``BaseBackend``).
    """

    _native_class: ClassVar[Any]

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        extras: dict[str, Any],
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        if not isinstance(key_prefix, str):
            raise ConfigurationTypeError(
                f"key_prefix must be a str, got {type(key_prefix).__name__}"
            )
        if config_provider is not None and not isinstance(config_provider, ConfigProvider):
            raise ConfigurationTypeError(
                "config_provider must have get_limit() and get_window(), got "
                f"{type(config_provider).__name__}"
            )
        self._impl = self._native_class(
            backend, limit, window, extras, key_prefix, clock, config_provider
        )
        self.backend = backend
        self.key_prefix = key_prefix
        self.config_provider = config_provider
        self.clock = clock
        self._limit = limit
        self._window = float(window)
        # A whole-service load (adaptive load_capacity) moves the parameters after every
        # decision, so async batches on Redis then decide one key after the other.
        self._batch_in_order = extras.get("load_capacity") is not None
        # Hot path: bind a direct C++ entry point onto the instance, so a call costs one
        # Python-to-C++ crossing. Subclasses that override is_allowed keep their override.
        if type(self).is_allowed is NativeRateLimiter.is_allowed:
            self.is_allowed = self._impl._fast_is_allowed()  # type: ignore[method-assign]

    @property
    def limit(self) -> int:
        if self.config_provider is not None:
            return self.config_provider.get_limit()
        return self._limit

    @property
    def window(self) -> float:
        if self.config_provider is not None:
            return self.config_provider.get_window()
        return self._window

    def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        result: RateLimitResult = self._impl.is_allowed(key, cost)
        return result

    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: Literal[True] = ...) -> list[RateLimitResult]: ...
    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: Literal[False]) -> list[bool]: ...
    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: bool) -> Union[list[RateLimitResult], list[bool]]: ...

    def is_allowed_many(self, keys: Iterable[str], cost: int = 1, *,
                        detail: bool = True) -> Union[list[RateLimitResult], list[bool]]:
        """Decide one request per key at one clock reading, in a single call into C++.

        Every key is validated before any is decided, so a batch with a bad key decides
        nothing. A single ``str`` (or ``bytes``) is a ``TypeError``, not a sequence of
        one-character keys. ``detail=False`` returns one bool per key instead of a
        ``RateLimitResult`` (cheaper: no result objects are built).

        On the memory store the batch is grouped by shard (each shard's lock taken once) and,
        from 32 keys, decided with the GIL released, so threads batching disjoint keys run in
        parallel. Each key's decision is atomic; the batch as a whole is not.
        """
        results: Union[list[RateLimitResult], list[bool]] = self._impl.is_allowed_many(
            batch_keys(keys), cost, detail=detail)
        return results

    def peek(self, key: str) -> RateLimitResult:
        result: RateLimitResult = self._impl.peek(key)
        return result

    def reset(self, key: str) -> None:
        self._impl.reset(key)

    async def is_allowed_async(self, key: str, cost: int = 1) -> RateLimitResult:
        """``is_allowed`` for asyncio code.

        On an ``AsyncRedisBackend`` this awaits the one script call without blocking the
        event loop; on the memory store it decides directly (microseconds); on other
        backends it runs ``is_allowed`` in the default executor.
        """
        if getattr(self.backend, "is_async", False) is True:
            return await self._script_decision(key, cost, peek=False)
        result: RateLimitResult = await self._off_loop(self.is_allowed, key, cost)
        return result

    async def peek_async(self, key: str) -> RateLimitResult:
        """``peek`` for asyncio code (see :meth:`is_allowed_async`)."""
        if getattr(self.backend, "is_async", False) is True:
            return await self._script_decision(key, 1, peek=True)
        result: RateLimitResult = await self._off_loop(self.peek, key)
        return result

    async def is_allowed_many_async(
        self, keys: Iterable[str], cost: int = 1
    ) -> list[RateLimitResult]:
        """``is_allowed_many`` for asyncio code: one request per key, in order.

        On an ``AsyncRedisBackend`` every key's script call goes in one pipeline (one round
        trip; per node on a cluster); elsewhere as :meth:`is_allowed_async`. Every key is
        validated before any is decided; ``on_error`` and ``timeout`` apply to the batch.
        """
        batch = batch_keys(keys)
        if getattr(self.backend, "is_async", False) is True:
            return await self._script_batch(batch, cost)
        results: list[RateLimitResult] = await self._off_loop(self.is_allowed_many, batch, cost)
        return results

    async def reset_async(self, key: str) -> None:
        """``reset`` for asyncio code (see :meth:`is_allowed_async`)."""
        if getattr(self.backend, "is_async", False) is True:
            backend: Any = self.backend
            # Validated like every other key (type, length, UTF-8) before it reaches Redis.
            await backend.reset(self._impl._storage_key(key), self._impl.algorithm)
            return
        await self._off_loop(self.reset, key)

    async def _off_loop(self, func: Callable[..., Any], *args: Any) -> Any:
        return await run_off_loop(self.backend, func, *args)

    async def _script_decision(self, key: str, cost: int, *, peek: bool) -> RateLimitResult:
        # The C++ limiter builds the script call and reads the reply exactly as RedisStore
        # does; only the round trip in between is awaited here.
        backend: Any = self.backend
        name, full_key, args, limit, window, now, cost = self._impl._redis_call(
            key, cost, peek, backend.use_server_time, bool(backend.binary_replies)
        )
        try:
            reply = await backend.run_script(name, backend.storage_key(full_key, name), args)
        except BackendError:
            # The backend's on_error policy answers instead, as RedisStore::decide does.
            if getattr(backend, "on_error", "raise") == "raise":
                raise
            fallback: RateLimitResult = backend.fallback_result(key, limit, window)
            return fallback
        parts = [reply] if isinstance(reply, (bytes, str)) else list(reply)
        result: RateLimitResult = self._impl._redis_result(key, parts, limit, window, now, cost)
        return result

    async def _script_batch(self, keys: Sequence[str], cost: int) -> list[RateLimitResult]:
        if self._batch_in_order:
            return [await self._script_decision(key, cost, peek=False) for key in keys]
        backend: Any = self.backend
        binary = bool(backend.binary_replies)
        # Every call is built (so every key and the cost validated) before anything is sent.
        calls = [self._impl._redis_call(key, cost, False, backend.use_server_time, binary)
                 for key in keys]
        if not calls:
            return []
        name = calls[0][0]
        try:
            replies = await backend.run_script_many(
                name, [([backend.storage_key(call[1], name)], call[2]) for call in calls])
        except BackendError:
            if backend.on_error == "raise":
                raise
            return [backend.fallback_result(key, call[3], call[4])
                    for key, call in zip(keys, calls)]
        return collect_batch(
            backend.on_error, replies,
            lambda i, parts: self._impl._redis_result(keys[i], parts, *calls[i][3:]),
            lambda i: backend.fallback_result(keys[i], calls[i][3], calls[i][4]))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(backend={type(self.backend).__name__}(), "
            f"limit={self.limit}, window={self.window}, key_prefix={self.key_prefix!r})"
        )


class WindowRateLimiter(NativeRateLimiter):
    """A native limiter configured by ``limit`` and ``window`` alone (no extra parameters)."""

    def __init__(
        self,
        backend: BaseBackend,
        limit: int,
        window: float,
        *,
        key_prefix: str = "",
        config_provider: Optional[ConfigProvider] = None,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        super().__init__(
            backend,
            limit,
            window,
            {},
            key_prefix=key_prefix,
            config_provider=config_provider,
            clock=clock,
        )
