"""asyncio Redis backend: the same Lua scripts as RedisBackend, through redis.asyncio."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Sequence
from typing import Any, Optional, TypeVar

from .. import _core
from ..exceptions import BackendError, ConfigurationError
from ..result import RateLimitResult
from ._redis_common import (
    Scripts,
    check_on_error,
    is_noscript,
    key_namer,
    multi_scripts,
    single_scripts,
    translate,
)
from ._rejection_cache import rejection_cache_entries

__all__ = ["AsyncRedisBackend"]

_T = TypeVar("_T")

class AsyncRedisBackend:
    """Limiter state in Redis for asyncio code: never blocks the event loop.

    Runs the very scripts :class:`RedisBackend` runs (``_core.lua_scripts()``, embedded from
    ``cpp/lua/`` at build time) with ``EVALSHA`` through a ``redis.asyncio.Redis`` client;
    ``NOSCRIPT`` is answered by ``EVAL`` of the source in the same call. Keys and time
    (``use_server_time``) are as in :class:`RedisBackend`, so both backends can share state.

    Limiters built on it decide with ``await limiter.is_allowed_async(key)`` (or through
    :class:`~ratelimiter.AsyncRateLimiter`); their synchronous ``is_allowed`` raises.

    Failures, as in :class:`RedisBackend`: ``timeout`` (seconds, default 0.5; ``None``: the
    client's own socket timeouts only) bounds each call as a whole — retries and reconnects
    of the client included — so a hung (stopped) or dead Redis costs a request at most
    ``timeout``, never the client's minutes of retries. ``on_error`` decides what a decision
    then returns: ``"raise"`` (``BackendError`` / ``BackendConnectionError``), ``"allow"``
    (fail open) or ``"deny"`` (fail closed, ``retry_after`` 1 s); such results carry
    ``metadata["on_error"]`` and are counted in :attr:`counters`.

    ``cache_rejections`` / ``rejection_cache_size``: known rejections answered without a
    round trip, exactly as :class:`RedisBackend` documents (the same C++ cache,
    ``_core.RejectionCache``); cached results carry ``metadata["cached"] = True``.
    """

    #: Marks the backend as asyncio-only for limiters and AsyncRateLimiter.
    is_async = True

    def __init__(self, client: Any, key_prefix: str = "rl:", *,
                 timeout: Optional[float] = 0.5, on_error: str = "raise",
                 use_server_time: bool = True, cache_rejections: bool = False,
                 rejection_cache_size: int = 10_000) -> None:
        if client is None:
            raise ConfigurationError("AsyncRedisBackend needs a redis.asyncio.Redis client")
        if not isinstance(key_prefix, str):
            raise ConfigurationError(f"key_prefix must be a str, got {type(key_prefix).__name__}")
        check_on_error(on_error)
        cache_entries = rejection_cache_entries(cache_rejections, rejection_cache_size)
        self._rejections = _core.RejectionCache(cache_entries) if cache_entries else None
        #: Whether known rejections are answered locally (see RedisBackend).
        self.cache_rejections = self._rejections is not None
        self.timeout = _check_timeout(timeout)
        self.on_error = on_error
        self._errors = 0
        self._fallback_allowed = 0
        self._fallback_denied = 0
        self.client = client
        self.key_prefix = key_prefix
        self.use_server_time = bool(use_server_time)
        self._keys = key_namer(key_prefix)
        # Scripts reply with packed doubles unless the client decodes every reply as UTF-8
        # (then with %.17g strings); the limiter asks for the format the client can carry.
        pool = getattr(client, "connection_pool", None)
        decodes = getattr(pool, "connection_kwargs", {}).get("decode_responses", False)
        #: Whether script replies are binary (packed doubles) rather than text.
        self.binary_replies = not decodes

    @property
    def counters(self) -> dict[str, int]:
        """``errors`` (failed attempts to decide), ``fallback_allowed``, ``fallback_denied``;
        with ``cache_rejections`` also the cache's counters (as RedisBackend's)."""
        counters = {
            "errors": self._errors,
            "fallback_allowed": self._fallback_allowed,
            "fallback_denied": self._fallback_denied,
        }
        if self._rejections is not None:
            counters.update(self._rejections.counters)
        return counters

    def storage_key(self, key: str, algorithm: str) -> str:
        """The Redis key of ``algorithm``'s state for a limiter key (as RedisBackend's)."""
        key_bytes: bytes = self._keys.storage_key(key, algorithm)
        return key_bytes.decode()

    async def _bounded(self, call: Awaitable[_T]) -> _T:
        """Await ``call`` for at most ``timeout``; failures become BackendError (counted)."""
        try:
            if self.timeout is None:
                return await call
            return await asyncio.wait_for(call, self.timeout)
        except asyncio.TimeoutError:
            # wait_for cancelled the command; redis-py drops a connection cancelled
            # mid-reply, so no late answer can be read by the next command.
            self._errors += 1
            raise BackendError(f"redis timed out after {self.timeout} s") from None
        except Exception as exc:
            self._errors += 1
            raise translate(exc) from exc

    async def run_script(self, algorithm: str, storage_key: str, args: Sequence[Any]) -> Any:
        """One EVALSHA of ``algorithm``'s script on ``storage_key`` (EVAL on NOSCRIPT).

        ``args`` are ARGV as cpp/lua/_common.lua documents them; returns the raw reply.
        Raises ``BackendError`` (whatever ``on_error``: the limiter applies the policy, see
        :meth:`fallback_result`) after at most ``timeout`` seconds.
        """
        if algorithm not in single_scripts().sources:
            raise ConfigurationError(f"unknown algorithm {algorithm!r}")
        cache = self._rejections
        if cache is None:
            return await self._bounded(self._evalsha(single_scripts(), algorithm,
                                                     [storage_key], args))
        # A known rejection comes back as a reply the limiter reads like Redis's own
        # (marked cached); the clock and stamp are read before sending (rejection_cache.hpp).
        sent = cache.monotonic()
        ticket = cache.ticket(storage_key)
        hit = cache.lookup(storage_key, algorithm, args, sent)
        if hit is not None:
            return hit
        reply = await self._bounded(self._evalsha(single_scripts(), algorithm, [storage_key],
                                                  args))
        cache.record(storage_key, algorithm, args, reply, sent, ticket)
        return reply

    async def run_multi_script(self, algorithm: str, keys: Sequence[str],
                               args: Sequence[Any]) -> Any:
        """One EVALSHA of ``algorithm``'s multi-limit script (MultiRateLimiter) over ``keys``.

        As :meth:`run_script`: ``BackendError`` after at most ``timeout`` seconds.
        """
        if algorithm not in multi_scripts().sources:
            raise ConfigurationError(f"unknown algorithm {algorithm!r}")
        return await self._bounded(self._evalsha(multi_scripts(), algorithm, keys, args))

    async def run_script_many(self, algorithm: str,
                              calls: Sequence[tuple[Sequence[str], Sequence[Any]]], *,
                              multi: bool = False) -> list[Any]:
        """``algorithm``'s script once per ``(keys, args)`` call, all in one pipeline
        (``transaction=False``): one round trip on a ``redis.asyncio.Redis``; on a
        ``redis.asyncio.cluster.RedisCluster`` its pipeline groups the calls by node and
        sends every node's group at once. ``multi`` picks the multi-limit scripts.

        Returns one item per call: its raw reply, or the ``BackendError`` that call got (a
        script error on one key does not cost the others their decision). A failure of the
        batch as a whole (timeout, connection) raises ``BackendError`` after at most
        ``timeout`` seconds, counted once per call as RedisBackend counts its batches.
        """
        scripts = multi_scripts() if multi else single_scripts()
        if algorithm not in scripts.sources:
            raise ConfigurationError(f"unknown algorithm {algorithm!r}")
        if not calls:
            return []
        if self._rejections is not None and not multi:
            return await self._run_many_cached(self._rejections, scripts, algorithm, calls)
        try:
            replies = await self._bounded(self._evalsha_many(scripts, algorithm, calls))
        except BackendError:
            self._errors += len(calls) - 1  # _bounded counted one
            raise
        failed = [reply for reply in replies if isinstance(reply, Exception)]
        self._errors += len(failed)
        return [translate(reply) if isinstance(reply, Exception) else reply
                for reply in replies]

    async def _run_many_cached(self, cache: Any, scripts: Scripts, algorithm: str,
                               calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
                               ) -> list[Any]:
        """run_script_many with the rejection cache: known rejections are answered here
        (as run_script does), the other calls go to Redis in one pipeline."""
        sent = cache.monotonic()
        out: list[Any] = [None] * len(calls)
        pending: list[tuple[int, int]] = []  # (call index, ticket) of calls sent to Redis
        for i, (keys, args) in enumerate(calls):
            ticket = cache.ticket(keys[0])
            out[i] = cache.lookup(keys[0], algorithm, args, sent)
            if out[i] is None:
                pending.append((i, ticket))
        if not pending:
            return out
        try:
            replies = await self._bounded(
                self._evalsha_many(scripts, algorithm, [calls[i] for i, _ in pending]))
        except BackendError:
            self._errors += len(pending) - 1  # _bounded counted one
            raise
        for (i, ticket), reply in zip(pending, replies):
            if isinstance(reply, Exception):
                self._errors += 1
                out[i] = translate(reply)
            else:
                keys, args = calls[i]
                cache.record(keys[0], algorithm, args, reply, sent, ticket)
                out[i] = reply
        return out

    async def _evalsha_many(self, scripts: Scripts, algorithm: str,
                            calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        sha, source = scripts.shas[algorithm], scripts.sources[algorithm]
        if not hasattr(self.client, "pipeline"):  # a client without pipelines: call by call
            return [await self._evalsha_or_error(scripts, algorithm, keys, args)
                    for keys, args in calls]
        replies = await self._pipelined(
            [("EVALSHA", sha, len(keys), *keys, *args) for keys, args in calls])
        missing = [i for i, reply in enumerate(replies)
                   if isinstance(reply, Exception) and is_noscript(reply)]
        if missing:  # a node's script cache was flushed: EVAL loads it again, once
            again = await self._pipelined(
                [("EVAL", source, len(calls[i][0]), *calls[i][0], *calls[i][1])
                 for i in missing])
            for i, reply in zip(missing, again):
                replies[i] = reply
        return replies

    async def _pipelined(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        # execute_command: RedisCluster's pipeline has no evalsha(), yet routes a queued
        # EVALSHA by its key's slot like any other keyed command.
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))

    async def _evalsha_or_error(self, scripts: Scripts, algorithm: str, keys: Sequence[str],
                                args: Sequence[Any]) -> Any:
        try:
            return await self._evalsha(scripts, algorithm, keys, args)
        except Exception as exc:
            return exc

    async def _evalsha(self, scripts: Scripts, algorithm: str, keys: Sequence[str],
                       args: Sequence[Any]) -> Any:
        try:
            return await self.client.evalsha(scripts.shas[algorithm], len(keys), *keys, *args)
        except Exception as exc:
            if not is_noscript(exc):
                raise
            return await self.client.eval(scripts.sources[algorithm], len(keys), *keys,
                                          *args)

    def fallback_result(self, key: str, limit: int, window: float) -> Any:
        """The ``on_error`` answer for a decision Redis failed to make (counted).

        ``"allow"`` admits with nothing known about the quota; ``"deny"`` rejects with a
        short retry (the outage's length is unknown) — as RedisBackend's native store.
        Not for ``on_error="raise"`` (the caller re-raises the error instead).
        """
        if self.on_error == "allow":
            self._fallback_allowed += 1
            return RateLimitResult(True, key, limit, 0, 0.0, 0.0, {"on_error": "allow"},
                                   window=window)
        self._fallback_denied += 1
        return RateLimitResult(False, key, limit, 0, 1.0, 1.0, {"on_error": "deny"},
                               window=window)

    async def reset(self, key: str, algorithm: str) -> None:
        """Forget ``key``'s state for ``algorithm``.

        A failure raises only under ``on_error="raise"`` (counted in ``errors`` either way),
        as RedisBackend's reset.
        """
        storage_key = self.storage_key(key, algorithm)
        # Before the DEL (no cached answer outlives it) and after (nor one recorded meanwhile).
        if self._rejections is not None:
            self._rejections.invalidate(storage_key)
        try:
            await self._bounded(self.client.delete(storage_key))
        except BackendError:
            if self.on_error == "raise":
                raise
        finally:
            if self._rejections is not None:
                self._rejections.invalidate(storage_key)

    async def ping(self) -> bool:
        """Whether Redis answers PING within ``timeout``."""
        try:
            if self.timeout is None:
                return bool(await self.client.ping())
            return bool(await asyncio.wait_for(self.client.ping(), self.timeout))
        except Exception:
            return False

    async def close(self) -> None:
        """Close the client's connections."""
        close = getattr(self.client, "aclose", None) or self.client.close
        await close()


def _check_timeout(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigurationError(
            f"timeout must be a number of seconds or None, got {type(timeout).__name__}")
    value = float(timeout)
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"timeout must be finite and > 0, got {timeout!r}")
    return value
