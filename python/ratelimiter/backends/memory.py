"""In-process backend: limiter state in a sharded, bounded C++ store."""

from __future__ import annotations

import time
from typing import Any, Optional

from .. import _core
from ._dict_primitives import DictPrimitives
from .base import BaseBackend

__all__ = ["MemoryBackend"]


class MemoryBackend(BaseBackend):
    """Limiter state in process memory.

    Decisions run in C++ under a per-shard lock, so threads sharing one backend never admit
    more than the limit. Idle keys expire once their state is fresh again, and the store
    never holds more than ``max_keys`` keys. The bound is kept per shard (64 shards, each
    holding its share of ``max_keys``, keys spread by hash), so eviction can begin slightly
    before the total reaches ``max_keys`` (at 1,000,000 keys: about 99.7% of it). A full
    shard first drops its expired keys, then evicts, among a random sample of 8, the key
    whose state would expire soonest (counted by :attr:`evictions`). An evicted key starts
    fresh, so size ``max_keys`` above the number of keys active within one window.

    The BaseBackend primitives (``get``, ``set``, ``zadd``, ...) are also available, in a
    separate thread-safe dict, for code that uses them directly.
    """

    never_blocks = True

    def __init__(self, max_keys: int = 1_000_000) -> None:
        self._native = _core.MemoryStore(max_keys)
        self._primitives = DictPrimitives()

    @property
    def max_keys(self) -> int:
        """Most limiter-state keys held at once."""
        return self._native.max_keys

    @property
    def evictions(self) -> int:
        """How many keys were evicted to respect ``max_keys``."""
        return self._native.evictions

    def __len__(self) -> int:
        """Number of limiter-state keys held (expired keys count until swept)."""
        return len(self._native)

    def purge_expired(self, now: Optional[float] = None) -> int:
        """Drop every key whose state is fresh again at ``now`` (default: ``time.time()``)."""
        return self._native.purge_expired(time.time() if now is None else now)

    def clear(self) -> None:
        """Forget all limiter state and primitive values."""
        self._native.clear()
        self._primitives = DictPrimitives()

    def get(self, key: str) -> Optional[Any]:
        return self._primitives.get(key)

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        self._primitives.set(key, value, ttl)

    def delete(self, key: str) -> None:
        self._primitives.delete(key)

    def incr(self, key: str, amount: int = 1) -> int:
        return self._primitives.incr(key, amount)

    def expire(self, key: str, ttl: float) -> None:
        self._primitives.expire(key, ttl)

    def zadd(self, key: str, score: float, member: str) -> None:
        self._primitives.zadd(key, score, member)

    def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        return self._primitives.zremrangebyscore(key, min_score, max_score)

    def zcard(self, key: str) -> int:
        return self._primitives.zcard(key)

    def zrange_by_score(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        return self._primitives.zrange_by_score(key, min_score, max_score)
