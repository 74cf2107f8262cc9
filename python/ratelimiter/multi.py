"""Several limits at once: ``MultiRateLimiter``.

A request is admitted only if every limit admits it, and a rejection consumes from none::

    limiter = MultiRateLimiter(backend, {"requests": "60/minute", "tokens": "90000/minute"},
                               algorithm="token_bucket")
    result = limiter.is_allowed("org:7", cost={"requests": 1, "tokens": estimate})
    ...
    limiter.adjust("org:7", cost={"tokens": real - estimate})   # charge or refund afterwards

The decision runs in the C++ core inside the one critical section a single limit uses (the
memory store's shard lock, one SQLite transaction, one EVALSHA on Redis); this module only
turns the ``limits`` argument into a list of limits and results into Python values.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Literal, Optional, Union, overload

from . import _core
from .algorithms.base import (
    NativeRateLimiter,
    _check_detail,
    batch_keys,
    collect_batch,
    run_off_loop,
)
from .backends.base import BaseBackend
from .exceptions import BackendError, ConfigurationError, ConfigurationTypeError
from .limits import Limit, LimitSpec, parse_limits
from .result import RateLimitResult, _whole_seconds

__all__ = ["MultiRateLimitResult", "MultiRateLimiter"]

MultiLimits = Union[LimitSpec, Mapping[str, LimitSpec]]
"""A limit string, a ``Limit``, a list of them, or ``{dimension: any of those}``."""

Cost = Union[int, Mapping[str, int]]
"""An int (every limit) or ``{dimension: int}`` (a dimension not named costs 0)."""

# Every algorithm of the core has a multi-limit form.
_ALGORITHMS = tuple(name for name, _native, _metadata in _core.algorithms())

_base_metadata = _core.RateLimitResultBase.metadata.__get__


class MultiRateLimitResult(RateLimitResult):
    """A ``RateLimitResult`` for several limits.

    ``limit``/``remaining``/``reset_after``/``window`` are the most restrictive limit's (the
    smallest ``remaining``, ties: the longest ``reset_after``); ``retry_after`` is the
    largest wait among the limits that refused (``inf`` if one can never admit the cost).
    ``metadata["limits"]`` lists every limit's own numbers: ``limit``, ``window``,
    ``dimension`` (``None`` for unnamed limits), ``allowed``, ``remaining``,
    ``reset_after``, ``retry_after``, ``insufficient_capacity``.
    """

    __slots__ = ("_multi",)
    _multi: tuple[Any, bytes]  # set by the core: (limits info, per-limit doubles)

    @property
    def metadata(self) -> dict[str, Any]:
        # A new dict (and new per-limit dicts) on each read, as RateLimitResult's: the result
        # stays immutable whatever a caller does with what it read.
        metadata: dict[str, Any] = _base_metadata(self)
        multi = getattr(self, "_multi", None)
        if multi is not None:
            metadata["limits"] = self._limits(multi)
        return metadata

    @staticmethod
    def _limits(multi: tuple[Any, bytes]) -> list[dict[str, Any]]:
        info, raw = multi
        values = struct.unpack(f"={len(raw) // 8}d", raw)
        out = []
        for i, (dimension, amount, window, _name) in enumerate(info):
            allowed, insufficient, remaining, reset_after, retry_after = values[5 * i:5 * i + 5]
            out.append({
                "limit": amount,
                "window": window,
                "dimension": dimension,
                "allowed": allowed == 1.0,
                "remaining": int(remaining),
                "reset_after": reset_after,
                "retry_after": retry_after,
                "insufficient_capacity": insufficient == 1.0,
            })
        return out

    @property
    def ietf_headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` naming every limit, and ``RateLimit`` with each one's state.

        ``RateLimit-Policy: "60/minute";q=60;w=60, "tokens:90000/minute";q=90000;w=60``
        (a named dimension prefixes its limits' names); ``RateLimit`` has one item per
        policy (``r`` remaining, ``t`` seconds to reset); ``Retry-After`` when rejected and
        waiting can help.
        """
        multi = getattr(self, "_multi", None)
        if multi is None:
            return super().ietf_headers
        policies, states = [], []
        for (_dim, amount, window, name), numbers in zip(multi[0], self._limits(multi)):
            policies.append(f'"{name}";q={amount};w={max(1, math.ceil(window))}')
            states.append(f'"{name}";r={numbers["remaining"]};'
                          f't={_whole_seconds(numbers["reset_after"])}')
        headers = {"RateLimit-Policy": ", ".join(policies), "RateLimit": ", ".join(states)}
        if not self.allowed and math.isfinite(self.retry_after):
            headers["Retry-After"] = _whole_seconds(self.retry_after)
        return headers

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {name: getattr(self, name) for name in
                  ("allowed", "key", "limit", "remaining", "reset_after", "retry_after")}
        kwargs["metadata"] = _base_metadata(self)
        return (_rebuild_multi_result, (kwargs, self.window, getattr(self, "_multi", None)))


def _rebuild_multi_result(kwargs: dict[str, Any], window: float,
                          multi: Optional[tuple[Any, bytes]]) -> MultiRateLimitResult:
    result = MultiRateLimitResult(**kwargs, window=window)
    if multi is not None:
        result._multi = multi
    return result


def _algorithm_name(algorithm: Any) -> str:
    if isinstance(algorithm, str):
        name = algorithm
    elif isinstance(algorithm, type) and issubclass(algorithm, NativeRateLimiter):
        name = algorithm._native_class.algorithm
    else:
        raise ConfigurationTypeError(
            f"algorithm must be a limiter class or its snake_case name, got {algorithm!r}")
    if name not in _ALGORITHMS:
        raise ConfigurationError(
            f"algorithm {name!r} cannot run several limits; use one of {', '.join(_ALGORITHMS)}")
    return name


def _limit_defs(limits: MultiLimits) -> list[tuple[Optional[str], Limit]]:
    """(dimension, limit) pairs, identical ones merged, in order of first appearance."""
    pairs: list[tuple[Optional[str], Limit]] = []
    if isinstance(limits, Mapping):
        if not limits:
            raise ConfigurationError("limits: no dimension given")
        for dimension, spec in limits.items():
            if not isinstance(dimension, str) or not dimension:
                raise ConfigurationTypeError(
                    f"limits: dimension names must be non-empty str, got {dimension!r}")
            pairs.extend((dimension, limit) for limit in parse_limits(spec))
    elif isinstance(limits, (str, Limit, Iterable)):
        pairs.extend((None, limit) for limit in parse_limits(limits))
    else:
        raise ConfigurationTypeError(
            "limits must be a limit string, a Limit, a list of them or a dict of dimensions, "
            f"got {type(limits).__name__}")
    return list(dict.fromkeys(pairs))


class MultiRateLimiter:
    """Several limits decided together, all or nothing, on any backend.

    Args:
        backend: Any backend (``MemoryBackend``, ``SQLiteBackend``, ``RedisBackend``,
            ``AsyncRedisBackend`` through the ``*_async`` methods, or a ``BaseBackend``).
        limits: ``"10/second;1000/day"``, a ``Limit``, a list of them, or a dict of named
            dimensions ``{"requests": "60/minute", "tokens": "90000/minute"}`` (a dimension
            may hold several limits). Identical limits are merged; different limits on the
            same window are all enforced.
        algorithm: A limiter class (e.g. ``TokenBucketRateLimiter``) or its snake_case name;
            every limit runs it with its default parameters. The adaptive limiter runs in
            its per-key load mode (each limit's sensor measures that key's own admitted
            load, with ``burst_multiplier=2`` as by default); its aggregate
            ``load_capacity`` mode measures a whole limiter's traffic and is not offered.
        key_prefix: Prepended to every key.
        clock: Zero-argument callable returning seconds (default: ``time.time`` at each call).

    Every limit's state is stored under the key plus the limit's definition, so changing a
    limit's amount or window starts it afresh instead of reading another limit's state.

    Thread-safety: every method may be called from any thread.
    """

    def __init__(
        self,
        backend: BaseBackend,
        limits: MultiLimits,
        algorithm: Any = "sliding_window_counter",
        *,
        key_prefix: str = "",
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        if not isinstance(key_prefix, str):
            raise ConfigurationTypeError(
                f"key_prefix must be a str, got {type(key_prefix).__name__}")
        name = _algorithm_name(algorithm)
        defs = _limit_defs(limits)
        info = tuple(
            (dim, limit.amount, limit.window, str(limit) if dim is None else f"{dim}:{limit}")
            for dim, limit in defs
        )
        self._impl = _core.MultiLimiter(
            backend, name, [(limit.amount, limit.window, dim or "") for dim, limit in defs],
            key_prefix, clock, MultiRateLimitResult, info)
        self.backend = backend
        self.algorithm = name
        self.key_prefix = key_prefix
        self.clock = clock
        self.limits: list[Limit] = [limit for _, limit in defs]
        self.dimensions: dict[str, list[Limit]] = {}
        for dim, limit in defs:
            if dim is not None:
                self.dimensions.setdefault(dim, []).append(limit)
        # Hot path: one Python-to-C++ crossing per decision (see NativeRateLimiter).
        if type(self).is_allowed is MultiRateLimiter.is_allowed:
            self.is_allowed = self._impl._fast_is_allowed()  # type: ignore[method-assign]

    @property
    def limit(self) -> int:
        """The first limit's amount (for code that expects one limit, e.g. decorators)."""
        return self.limits[0].amount

    @property
    def window(self) -> float:
        """The first limit's window in seconds."""
        return self.limits[0].window

    def is_allowed(self, key: str, cost: Cost = 1) -> MultiRateLimitResult:
        """Decide one request for ``key``: admitted only if every limit admits its cost.

        ``cost`` is a positive int charged to every limit, or ``{dimension: int >= 0}``; a
        dimension not named costs 0 for this request (neither checked nor charged). A cost
        above some limit's capacity is rejected with ``retry_after = inf`` and
        ``metadata["insufficient_capacity"]``.

        Raises:
            ConfigurationError: unknown dimension, negative cost (only :meth:`adjust`
                refunds), bad key; nothing is changed.
        """
        result: MultiRateLimitResult = self._impl.is_allowed(key, cost)
        return result

    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: Cost = 1, *,
                        detail: Literal[True] = ...) -> list[MultiRateLimitResult]: ...
    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: Cost = 1, *,
                        detail: Literal[False]) -> list[bool]: ...
    @overload
    def is_allowed_many(self, keys: Iterable[str], cost: Cost = 1, *,
                        detail: bool) -> Union[list[MultiRateLimitResult], list[bool]]: ...

    def is_allowed_many(self, keys: Iterable[str], cost: Cost = 1, *,
                        detail: bool = True) -> Union[list[MultiRateLimitResult], list[bool]]:
        """Decide one request per key at one clock reading, in order.

        Every key is validated before any is decided; a single ``str`` is a ``TypeError``.
        ``detail=False`` returns one bool per key (``result.allowed``) instead of the results.
        """
        _check_detail(detail)
        results: list[MultiRateLimitResult] = self._impl.is_allowed_many(batch_keys(keys),
                                                                          cost)
        return results if detail else [r.allowed for r in results]

    def peek(self, key: str) -> MultiRateLimitResult:
        """Every limit's state as a cost-1 decision, consuming nothing."""
        result: MultiRateLimitResult = self._impl.peek(key)
        return result

    def acquire(self, key: str, cost: Cost = 1,
                timeout: Optional[float] = None) -> MultiRateLimitResult:
        """Block until ``cost`` is admitted on every limit (as ``BaseAlgorithm.acquire``:
        exact ``retry_after`` sleeps, first come first served, ``RateLimitTimeout``)."""
        from .client import _waiting

        result: MultiRateLimitResult = _waiting.acquire(self, key, cost, timeout)
        return result

    async def acquire_async(self, key: str, cost: Cost = 1,
                            timeout: Optional[float] = None) -> MultiRateLimitResult:
        """:meth:`acquire` for asyncio code (never blocks the event loop)."""
        from .client import _waiting

        result: MultiRateLimitResult = await _waiting.acquire_async(self, key, cost, timeout)
        return result

    def adjust(self, key: str, cost: Cost) -> MultiRateLimitResult:
        """Charge (positive) or refund (negative) ``key`` after the fact, without a decision.

        ``cost`` as in :meth:`is_allowed` but signed, e.g. ``{"tokens": used - estimated}``.
        A charge is never refused and may take a limit into debt (later requests wait until
        it is paid back; a bucket — token, leaky, GCRA — owes at most one whole bucket and
        the rest of a larger charge is dropped); a refund never exceeds a full quota.
        Atomic like a decision.
        Returns the state afterwards, as :meth:`peek` would.
        """
        result: MultiRateLimitResult = self._impl.adjust(key, cost)
        return result

    def reset(self, key: str) -> None:
        """Forget ``key``'s state for every limit."""
        self._impl.reset(key)

    async def is_allowed_async(self, key: str, cost: Cost = 1) -> MultiRateLimitResult:
        """:meth:`is_allowed` for asyncio code (never blocks the event loop)."""
        if getattr(self.backend, "is_async", False) is True:
            return await self._script(key, cost, "consume")
        result: MultiRateLimitResult = await self._off_loop(self.is_allowed, key, cost)
        return result

    async def is_allowed_many_async(self, keys: Iterable[str],
                                    cost: Cost = 1) -> list[MultiRateLimitResult]:
        """:meth:`is_allowed_many` for asyncio code: on an ``AsyncRedisBackend`` every key's
        multi-limit script call goes in one pipeline (one round trip; per node on a
        cluster). Every key is validated before any is decided; ``on_error`` and
        ``timeout`` apply to the batch."""
        batch = batch_keys(keys)
        if getattr(self.backend, "is_async", False) is True:
            return await self._script_many(batch, cost)
        results: list[MultiRateLimitResult] = await self._off_loop(self.is_allowed_many,
                                                                     batch, cost)
        return results

    async def peek_async(self, key: str) -> MultiRateLimitResult:
        """:meth:`peek` for asyncio code."""
        if getattr(self.backend, "is_async", False) is True:
            return await self._script(key, 1, "peek")
        result: MultiRateLimitResult = await self._off_loop(self.peek, key)
        return result

    async def adjust_async(self, key: str, cost: Cost) -> MultiRateLimitResult:
        """:meth:`adjust` for asyncio code."""
        if getattr(self.backend, "is_async", False) is True:
            return await self._script(key, cost, "adjust")
        result: MultiRateLimitResult = await self._off_loop(self.adjust, key, cost)
        return result

    async def reset_async(self, key: str) -> None:
        """:meth:`reset` for asyncio code."""
        if getattr(self.backend, "is_async", False) is True:
            backend: Any = self.backend
            _, keys, _, _ = self._impl._redis_call(key, 1, "peek", backend.key_prefix, True, True)
            try:
                await backend._bounded(backend.client.delete(*keys))
            except BackendError:
                if backend.on_error == "raise":
                    raise
            return
        await self._off_loop(self.reset, key)

    async def _off_loop(self, func: Callable[..., Any], *args: Any) -> Any:
        return await run_off_loop(self.backend, func, *args)

    async def _script(self, key: str, cost: Cost, op: str) -> MultiRateLimitResult:
        # The C++ limiter builds the one multi-script call and reads its reply exactly as
        # RedisStore does; only the round trip is awaited here.
        backend: Any = self.backend
        name, keys, args, now = self._impl._redis_call(
            key, cost, op, backend.key_prefix, backend.use_server_time,
            bool(backend.binary_replies))
        try:
            reply = await backend.run_multi_script(name, keys, args)
        except BackendError:
            if getattr(backend, "on_error", "raise") == "raise":
                raise
            fallback: MultiRateLimitResult = backend.fallback_result(key, self.limit, self.window)
            return fallback
        parts = [reply] if isinstance(reply, (bytes, str)) else list(reply)
        result: MultiRateLimitResult = self._impl._redis_result(key, parts, now)
        return result

    async def _script_many(self, keys: Sequence[str], cost: Cost) -> list[MultiRateLimitResult]:
        backend: Any = self.backend
        # Every call is built (so every key and the cost validated) before anything is sent.
        calls = [self._impl._redis_call(key, cost, "consume", backend.key_prefix,
                                        backend.use_server_time, bool(backend.binary_replies))
                 for key in keys]
        if not calls:
            return []
        limit, window = self.limit, self.window
        try:
            replies = await backend.run_script_many(
                calls[0][0], [(call[1], call[2]) for call in calls], multi=True)
        except BackendError:
            if backend.on_error == "raise":
                raise
            return [backend.fallback_result(key, limit, window) for key in keys]
        return collect_batch(
            backend.on_error, replies,
            lambda i, parts: self._impl._redis_result(keys[i], parts, calls[i][3]),
            lambda i: backend.fallback_result(keys[i], limit, window))

    def __repr__(self) -> str:
        limits = ", ".join(f"{dim}:{limit}" if dim else str(limit)
                           for dim, limit in ((d, lim) for d, lims in self.dimensions.items()
                                              for lim in lims)) \
            if self.dimensions else ";".join(str(limit) for limit in self.limits)
        return (f"MultiRateLimiter(backend={type(self.backend).__name__}(), "
                f"limits={limits!r}, algorithm={self.algorithm!r}, "
                f"key_prefix={self.key_prefix!r})")
