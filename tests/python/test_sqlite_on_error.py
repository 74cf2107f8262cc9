"""SQLiteBackend(on_error=): what a decision answers when SQLite cannot make it.

Real files and real locks: another connection holds the write lock past busy_timeout
(busy_timeout=0, so the outcome is exact and immediate), a database file overwritten with
garbage, a corrupt state row. "allow" / "deny" answer as RedisBackend's on_error does
(metadata["on_error"], backend.counters); "raise" raises BackendError."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact

import ratelimiter
from ratelimiter import MultiRateLimiter
from ratelimiter.backends import SQLiteBackend
from ratelimiter.exceptions import BackendError

LIMIT, WINDOW = 3, 10.0
NO_FALLBACK = {"errors": 0, "fallback_allowed": 0, "fallback_denied": 0}


@contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holds the database's write lock inside the block."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _expected(on_error: str, failures: int) -> dict[str, int]:
    return {"errors": failures,
            "fallback_allowed": failures if on_error == "allow" else 0,
            "fallback_denied": failures if on_error == "deny" else 0}


@pytest.mark.parametrize("on_error", ["allow", "deny"])
@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_lock_held_past_busy_timeout_answers_the_policy(
        tmp_path: Path, cls: type, on_error: str, clock: FakeClock) -> None:
    backend = SQLiteBackend(tmp_path / "rl.db", busy_timeout=0, on_error=on_error)
    limiter = make_exact(cls, backend, LIMIT, WINDOW, clock=clock)
    with write_lock_held(tmp_path / "rl.db"):
        results = [limiter.is_allowed("k") for _ in range(LIMIT + 2)]
        # A read (peek) runs beside the writer in WAL mode: SQLite decides it, uncounted.
        peeked = limiter.peek("k")
    allowed = on_error == "allow"
    assert [r.allowed for r in results] == [allowed] * (LIMIT + 2)
    for r in results:
        assert r.metadata["on_error"] == on_error
        assert r.remaining == 0
        # "deny": a short retry (1 s, nudged by a few ulps as every rejection is).
        assert r.retry_after == (0.0 if allowed else pytest.approx(1.0, abs=1e-9))
    assert backend.counters == _expected(on_error, LIMIT + 2)
    assert peeked.allowed and peeked.remaining == LIMIT and "on_error" not in peeked.metadata


def test_lock_held_past_busy_timeout_raises_under_raise(tmp_path: Path,
                                                        clock: FakeClock) -> None:
    backend = SQLiteBackend(tmp_path / "rl.db", busy_timeout=0)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, LIMIT, WINDOW, clock=clock)
    with write_lock_held(tmp_path / "rl.db"):
        for _ in range(2):
            with pytest.raises(BackendError, match="is locked"):
                limiter.is_allowed("k")
    assert backend.on_error == "raise"
    assert backend.counters == {"errors": 2, "fallback_allowed": 0, "fallback_denied": 0}


def test_fallback_decisions_leave_the_state_untouched(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "rl.db"
    backend = SQLiteBackend(path, busy_timeout=0, on_error="allow")
    limiter = ratelimiter.FixedWindowRateLimiter(backend, LIMIT, WINDOW, clock=clock)
    assert limiter.is_allowed("k").remaining == LIMIT - 1
    with write_lock_held(path):
        assert all(limiter.is_allowed("k").metadata["on_error"] == "allow" for _ in range(10))
    # The lock is gone: SQLite decides again, from the one admission it recorded.
    assert [limiter.is_allowed("k").allowed for _ in range(LIMIT)] == [True, True, False]
    assert backend.counters == _expected("allow", 10)


@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_multi_limiter_falls_back_as_one_decision(tmp_path: Path, on_error: str,
                                                  clock: FakeClock) -> None:
    backend = SQLiteBackend(tmp_path / "rl.db", busy_timeout=0, on_error=on_error)
    multi = MultiRateLimiter(backend, ["3/10 seconds", "10/minute"], clock=clock)
    with write_lock_held(tmp_path / "rl.db"):
        result = multi.is_allowed("k")
    assert result.allowed is (on_error == "allow")
    assert result.metadata["on_error"] == on_error
    assert backend.counters == _expected(on_error, 1)


@pytest.mark.parametrize("on_error", ["allow", "deny", "raise"])
def test_database_file_overwritten_with_garbage(tmp_path: Path, on_error: str,
                                                clock: FakeClock) -> None:
    path = tmp_path / "rl.db"
    # Rollback-journal mode: every transaction re-reads the file header, so the damage is
    # seen by the next decision (a WAL reader may go on from its cached pages).
    backend = SQLiteBackend(path, wal_mode=False, busy_timeout=0, on_error=on_error)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, LIMIT, WINDOW, clock=clock)
    assert limiter.is_allowed("k").allowed
    size = path.stat().st_size
    path.write_bytes(b"\x5a" * size)
    if on_error == "raise":
        with pytest.raises(BackendError):
            limiter.is_allowed("k")
    else:
        result = limiter.is_allowed("k")
        assert result.allowed is (on_error == "allow")
        assert result.metadata["on_error"] == on_error
    assert backend.counters == _expected(on_error, 1)


@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_corrupt_state_row_answers_the_policy(tmp_path: Path, on_error: str,
                                              clock: FakeClock) -> None:
    path = tmp_path / "rl.db"
    backend = SQLiteBackend(path, on_error=on_error)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, LIMIT, WINDOW, clock=clock)
    assert limiter.is_allowed("k").allowed
    with sqlite3.connect(path) as db:
        assert db.execute("UPDATE rl_state SET state = x'0102'").rowcount == 1
    result = limiter.is_allowed("k")
    assert result.allowed is (on_error == "allow")
    assert result.metadata["on_error"] == on_error
    limiter.reset("k")  # a reset clears the bad row: SQLite decides again
    assert limiter.is_allowed("k").remaining == LIMIT - 1
    assert backend.counters == _expected(on_error, 1)


@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_async_path_answers_the_policy(tmp_path: Path, on_error: str,
                                       clock: FakeClock) -> None:
    backend = SQLiteBackend(tmp_path / "rl.db", busy_timeout=0, on_error=on_error)
    limiter: Any = ratelimiter.SlidingWindowRateLimiter(backend, LIMIT, WINDOW, clock=clock)
    with write_lock_held(tmp_path / "rl.db"):
        result = asyncio.run(limiter.is_allowed_async("k"))
    assert result.allowed is (on_error == "allow")
    assert result.metadata["on_error"] == on_error
    assert backend.counters == _expected(on_error, 1)


def test_uri_and_repr_carry_the_policy(tmp_path: Path) -> None:
    backend = ratelimiter.backend_from_uri(f"sqlite://{tmp_path / 'rl.db'}?on_error=deny")
    assert isinstance(backend, SQLiteBackend) and backend.on_error == "deny"
    assert repr(backend) == f"SQLiteBackend({str(tmp_path / 'rl.db')!r}, on_error='deny')"
    assert backend.counters == NO_FALLBACK
