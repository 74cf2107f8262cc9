"""A thread-safe in-process implementation of the BaseBackend primitives.

MemoryBackend keeps limiter state in its native C++ store; these primitives serve code that
uses the documented get/set/zadd... API directly (custom algorithms, the original library's
habits). Values expire on a monotonic clock.
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Any, Optional


class DictPrimitives:
    """The BaseBackend primitives over a dict, with TTLs and a lock."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def _alive(self, key: str) -> bool:
        deadline = self._expires.get(key)
        if deadline is not None and time.monotonic() >= deadline:
            self._values.pop(key, None)
            del self._expires[key]
        return key in self._values

    def get(self, key: str) -> Optional[Any]:
        with self._lock:
            return self._values.get(key) if self._alive(key) else None

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        with self._lock:
            self._values[key] = value
            if ttl is None:
                self._expires.pop(key, None)
            else:
                self._expires[key] = time.monotonic() + float(ttl)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._expires.pop(key, None)

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            current = self._values.get(key, 0) if self._alive(key) else 0
            if not isinstance(current, int) or isinstance(current, bool):
                raise TypeError(f"value at {key!r} is not an integer")
            self._values[key] = current + amount
            return current + amount

    def expire(self, key: str, ttl: float) -> None:
        with self._lock:
            if self._alive(key):
                self._expires[key] = time.monotonic() + float(ttl)

    def _zset(self, key: str, create: bool) -> Optional[list[tuple[float, str]]]:
        if not self._alive(key):
            if not create:
                return None
            self._values[key] = []
        zset = self._values[key]
        if not isinstance(zset, list):
            raise TypeError(f"value at {key!r} is not a sorted set")
        return zset

    def zadd(self, key: str, score: float, member: str) -> None:
        with self._lock:
            zset = self._zset(key, create=True)
            assert zset is not None
            for i, (_, existing) in enumerate(zset):
                if existing == member:
                    del zset[i]
                    break
            bisect.insort(zset, (float(score), member))

    def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        with self._lock:
            zset = self._zset(key, create=False)
            if zset is None:
                return 0
            kept = [(s, m) for s, m in zset if not (min_score <= s <= max_score)]
            removed = len(zset) - len(kept)
            zset[:] = kept
            return removed

    def zcard(self, key: str) -> int:
        with self._lock:
            zset = self._zset(key, create=False)
            return 0 if zset is None else len(zset)

    def zrange_by_score(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        with self._lock:
            zset = self._zset(key, create=False)
            if zset is None:
                return []
            return [(m, s) for s, m in zset if min_score <= s <= max_score]
