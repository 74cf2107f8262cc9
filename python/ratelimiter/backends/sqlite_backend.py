"""SQLite backend: limiter state in a database file shared by threads and processes."""

from __future__ import annotations

import json
import math
import os
import time
from types import TracebackType
from typing import Any, Optional, Union

from .. import _core
from ..exceptions import ConfigurationError, ConfigurationTypeError
from ._dict_primitives import validate_amount, validate_ttl
from .base import BaseBackend

__all__ = ["SQLiteBackend"]

def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationTypeError(f"{name} must be a number, got {type(value).__name__}")
    result = float(value)
    if math.isnan(result):
        raise ConfigurationError(f"{name} must not be NaN")
    return result


def _member(member: Any) -> str:
    if isinstance(member, str):
        return member
    if isinstance(member, bytes):
        return member.decode()
    return str(member)


class SQLiteBackend(BaseBackend):
    """Limiter state in a SQLite database, exact across threads and processes on one host.

    Each decision is one ``BEGIN IMMEDIATE`` transaction in C++ (read the key's state row,
    run the algorithm's step, write the row back if it changed), so concurrent threads and
    processes sharing the file never admit more than the limit. ``":memory:"`` (the
    default) is one private in-memory database that every thread of this backend shares.

    Args:
        db_path: a file path (``str`` or ``os.PathLike``), ``":memory:"``, or a SQLite
            ``file:`` URI.
        wal_mode: put the file in write-ahead-log mode (readers never block the writer).
            ``False`` leaves the file's journal mode as it is.
        busy_timeout: seconds to wait for a lock held by another connection before the
            decision fails (a call never hangs: at most about ``2 * busy_timeout + 1`` s
            when threads queue behind a stuck lock); ``on_error`` says what it answers.
        synchronous: SQLite's ``PRAGMA synchronous``: ``"OFF"``, ``"NORMAL"`` (default;
            with WAL, a power loss may lose the last decisions but never corrupts the file),
            ``"FULL"`` or ``"EXTRA"``.
        on_error: what a decision answers when SQLite cannot make it (a lock held past
            ``busy_timeout``, a disk I/O error, a corrupt file or state row, a closed
            backend), as :class:`~ratelimiter.RedisBackend`'s: ``"raise"`` (default) raises
            :class:`~ratelimiter.BackendError`; ``"allow"`` admits (fail open) and
            ``"deny"`` rejects with ``retry_after == 1.0`` (fail closed), both with
            ``metadata["on_error"]`` set and counted in :attr:`counters`. Opening the file
            and the ``BaseBackend`` primitives always raise.

    Expired state rows are pruned in bounded batches as decisions are made, and all at
    once by :meth:`purge_expired`. The ``BaseBackend`` primitives (``get``, ``set``,
    ``incr``, ``zadd``, ...) are stored in tables of their own; values are JSON. Use it as a
    context manager, or call :meth:`close`, to release the file. After ``os.fork()`` a
    child process reopens the file by itself.
    """

    def __init__(
        self,
        db_path: Union[str, os.PathLike[str]] = ":memory:",
        wal_mode: bool = True,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        on_error: str = "raise",
    ) -> None:
        if isinstance(db_path, os.PathLike):
            db_path = os.fspath(db_path)
        self._native = _core.SqliteStore(db_path, wal_mode, busy_timeout, synchronous, on_error)
        self.on_error = on_error

    @property
    def db_path(self) -> str:
        """The path (or URI) the database was opened with."""
        return self._native.path

    @property
    def counters(self) -> dict[str, int]:
        """``errors`` (decisions SQLite failed to make, under any policy),
        ``fallback_allowed`` / ``fallback_denied`` (answered by ``on_error`` instead)."""
        counters: dict[str, int] = self._native.counters
        return counters

    def __len__(self) -> int:
        """Number of limiter-state rows in the file (a count over the table)."""
        return len(self._native)

    def purge_expired(self, now: Optional[float] = None) -> int:
        """Delete every state row and primitive key expired at ``now`` (default
        ``time.time()``); returns how many. Runs in batches, one transaction each."""
        return self._native.purge_expired(time.time() if now is None else _finite(now, "now"))

    def ping(self) -> bool:
        """Whether the database answers (``False`` once closed)."""
        return self._native.ping()

    def close(self) -> None:
        """Close the database; later calls raise :class:`~ratelimiter.BackendError`."""
        self._native.close()

    def __enter__(self) -> SQLiteBackend:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.db_path!r}, on_error={self.on_error!r})"

    # ---- BaseBackend primitives (time.time() looked up per call, so patching it works) ----

    def get(self, key: str) -> Optional[Any]:
        text = self._native.get(key, time.time())
        return None if text is None else json.loads(text)

    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> None:
        text = json.dumps(value)
        self._native.set(key, text, None if ttl is None else validate_ttl(ttl), time.time())

    def delete(self, key: str) -> None:
        self._native.delete(key)

    def incr(self, key: str, amount: int = 1) -> int:
        return self._native.incr(key, validate_amount(amount), time.time())

    def expire(self, key: str, ttl: float) -> None:
        self._native.expire(key, validate_ttl(ttl), time.time())

    def zadd(self, key: str, score: float, member: str) -> None:
        self._native.zadd(key, _finite(score, "score"), _member(member), time.time())

    def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        return self._native.zremrangebyscore(
            key, _finite(min_score, "min_score"), _finite(max_score, "max_score"), time.time()
        )

    def zcard(self, key: str) -> int:
        return self._native.zcard(key, time.time())

    def zrange_by_score(
        self, key: str, min_score: float, max_score: float
    ) -> list[tuple[str, float]]:
        return self._native.zrange_by_score(
            key, _finite(min_score, "min_score"), _finite(max_score, "max_score"), time.time()
        )
