"""A thread-safe in-process implementation of the BaseBackend primitives.

MemoryBackend keeps limiter state in its native C++ store; these primitives serve code that
uses the documented get/set/zadd... API directly (custom algorithms, the original library's
habits).

Primitive semantics shared by every built-in backend (MemoryBackend, SQLiteBackend,
RedisBackend; tests/python/test_backend_contract.py holds them to it):

- A ``ttl`` is a finite number of seconds > 0 (a float is fine); anything else (0, a negative
  number, NaN, inf, a bool) raises ConfigurationError (a ValueError) naming ``ttl``, as
  Redis itself refuses ``SET ... PX 0``. "Expire now" is ``delete``.
- TTLs count on ``time.time()``, looked up at every call: the clock the limiters use by
  default and the one SQLite stores, so ``unittest.mock.patch("time.time")``, freezegun and
  time-machine expire values in users' tests. (Redis counts on its own server clock.)
- ``incr``'s ``amount`` is an int (ConfigurationTypeError otherwise); using a key as the
  wrong kind (``incr`` on a non-integer, ``get`` on a sorted set, ``zadd`` on a plain value)
  raises TypeError.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from typing import Any, Optional

from ..exceptions import ConfigurationError, ConfigurationTypeError


def validate_ttl(ttl: Any) -> float:
    """``ttl`` as seconds: a finite number > 0, else ConfigurationError naming it."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise ConfigurationTypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
    seconds = float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    return seconds


def validate_amount(amount: Any) -> int:
    """``incr``'s amount: an int (bool refused), else ConfigurationTypeError naming it."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ConfigurationTypeError(f"amount must be an int, got {type(amount).__name__}")
    return amount


class _ZSet(list):  # type: ignore[type-arg]
    """A sorted set's (score, member) pairs: its own type, so a list value is never one."""


class DictPrimitives:
    """The BaseBackend primitives over a dict, with TTLs and a lock."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()

    def _alive(self, key: str) -> bool:
        deadline = self._expires.get(key)
        if deadline is not None and time.time() >= deadline:
            self._values.pop(key, None)
            del self._expires[key]
        return key in self._values

    def get(self, key: str) -> Optional[Any]:
        with self._lock:
            value = self._values.get(key) if self._alive(key) else None
            if isinstance(value, _ZSet):
                raise TypeError(f"value at {key!r} is not a plain value (it is a sorted set)")
            return value

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        deadline = None if ttl is None else time.time() + validate_ttl(ttl)
        with self._lock:
            self._values[key] = value
            if deadline is None:
                self._expires.pop(key, None)
            else:
                self._expires[key] = deadline

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._expires.pop(key, None)

    def incr(self, key: str, amount: int = 1) -> int:
        amount = validate_amount(amount)
        with self._lock:
            current = self._values.get(key, 0) if self._alive(key) else 0
            if not isinstance(current, int) or isinstance(current, bool):
                raise TypeError(f"value at {key!r} is not an integer")
            self._values[key] = current + amount
            return current + amount

    def expire(self, key: str, ttl: float) -> None:
        seconds = validate_ttl(ttl)
        with self._lock:
            if self._alive(key):
                self._expires[key] = time.time() + seconds

    def _zset(self, key: str, create: bool) -> Optional[list[tuple[float, str]]]:
        if not self._alive(key):
            if not create:
                return None
            self._values[key] = _ZSet()
        zset = self._values[key]
        if not isinstance(zset, _ZSet):
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
