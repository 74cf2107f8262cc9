"""The golden traces (tests/traces/<algorithm>.csv) on every store: MemoryBackend,
SQLiteBackend on a file, RedisBackend on a real redis-server and on fakeredis (both with
the limiter's clock), and a user's own BaseBackend (conftest's DictBackend).

Every row must match exactly: the floats in the files are shortest round-trip reprs and
the stores must perform the same floating-point operations (docs/ALGORITHMS.md), so
``allowed``, ``remaining``, ``retry_after`` and ``reset_after`` are compared with ``==``
(no tolerance). tests/cpp/test_golden_traces.cpp reads the same files.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import redis
from conftest import DictBackend
from redis_server import RedisServer

from ratelimiter import MemoryBackend, RedisBackend, SQLiteBackend
from ratelimiter.algorithms.registry import builtin_limiters

TRACES = Path(__file__).resolve().parents[1] / "traces"
CLASSES = builtin_limiters()  # every built-in algorithm, from the core's list
FIXED = {"scenario", "now", "op", "cost", "limit", "window", "allowed", "remaining",
         "retry_after", "reset_after", "check"}
INT_PARAMS = {"burst"}
_prefixes = itertools.count()


def load(algorithm: str) -> list[dict[str, str]]:
    """The rows of one trace file (comment lines skipped)."""
    with (TRACES / f"{algorithm}.csv").open(newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def _param(name: str, text: str) -> Any:
    return int(text) if name in INT_PARAMS else float(text)


def replay(algorithm: str, backend: Any) -> Iterator[tuple[dict[str, str], Any]]:
    """Runs one trace on `backend`, yielding each row with the result the store gave.

    Each row builds a limiter with that row's parameters over the same backend (the state
    lives in the store), which is how a parameter change reaches a key.
    """
    prefix = f"golden{next(_prefixes)}:"  # shared servers: fresh keys for every run
    for row in load(algorithm):
        now = float(row["now"])
        extras = {name: _param(name, value) for name, value in row.items()
                  if name not in FIXED and value != ""}
        limiter = CLASSES[algorithm](backend, int(row["limit"]), float(row["window"]),
                                     key_prefix=prefix, clock=lambda now=now: now, **extras)
        key = row["scenario"]
        result = limiter.peek(key) if row["op"] == "peek" else limiter.is_allowed(
            key, int(row["cost"]))
        yield row, result


def expected(row: dict[str, str]) -> tuple[bool, int, float, float]:
    return (row["allowed"] == "1", int(row["remaining"]), float(row["retry_after"]),
            float(row["reset_after"]))


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _fakeredis() -> Any:
    fakeredis = pytest.importorskip("fakeredis")
    pytest.importorskip("lupa")
    return RedisBackend(fakeredis.FakeRedis(), use_server_time=False)


STORES: dict[str, Callable[[Any, Path], Any]] = {
    "memory": lambda server, tmp: MemoryBackend(),
    "sqlite_file": lambda server, tmp: SQLiteBackend(str(tmp / "golden.db")),
    "redis": lambda server, tmp: RedisBackend(redis.Redis(port=server.port),
                                              use_server_time=False, timeout=5.0),
    "fakeredis": lambda server, tmp: _fakeredis(),
    "custom_base_backend": lambda server, tmp: DictBackend(),
}


@pytest.mark.parametrize("store", list(STORES))
@pytest.mark.parametrize("algorithm", list(CLASSES))
def test_golden_trace(algorithm: str, store: str, redis_server: RedisServer,
                      tmp_path: Path) -> None:
    backend = STORES[store](redis_server, tmp_path)
    try:
        for row, result in replay(algorithm, backend):
            got = (result.allowed, result.remaining, result.retry_after, result.reset_after)
            assert got == expected(row), (row["scenario"], row["now"], row["op"], row["cost"])
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def test_traces_cover_the_documented_shapes() -> None:
    """Every file has epoch-scale times, a sub-second window, a cost above capacity (an
    infinite retry_after), peeks, a clock step back, a forward glitch beyond the 60 s
    tolerance, a window change, and rows checked by hand against docs/ALGORITHMS.md."""
    for algorithm in CLASSES:
        rows = load(algorithm)
        times = [float(r["now"]) for r in rows]
        scenarios = {r["scenario"] for r in rows}
        assert max(times) > 1.7e9
        assert any(float(r["window"]) < 1 for r in rows)
        assert any(math.isinf(float(r["retry_after"])) for r in rows)
        assert any(r["op"] == "peek" for r in rows)
        assert any(b < a for a, b in zip(times, times[1:]))
        assert {"forward_glitch_beyond_tolerance", "config_change"} <= scenarios
        assert len({r["window"] for r in rows if r["scenario"] == "config_change"}) > 1
        assert sum(r["check"] == "doc" for r in rows) >= 3, algorithm
