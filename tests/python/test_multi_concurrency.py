"""MultiRateLimiter under contention: 8 threads, and 4 processes x 4 threads, on one key with
"5/second;20/minute" on memory, a SQLite file and a real redis-server.

The clock is frozen (or advanced between rounds by the test), so the admitted count is
exact: the tighter limit's amount. Afterwards every limit's state is read (peek) to show that
no limit was charged for a rejected request: the minute limit holds exactly the admitted
requests.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from redis_server import RedisServer

from ratelimiter import MemoryBackend, MultiRateLimiter, RedisBackend, SQLiteBackend

pytestmark = [pytest.mark.slow]

LIMITS = "5/second;20/minute"
FROZEN = 1_700_000_000.25
ALGORITHMS = ["fixed_window", "sliding_window", "sliding_window_counter", "token_bucket",
              "leaky_bucket", "gcra", "adaptive"]
# (admitted, [(limit, remaining)] afterwards): the tighter limit's amount, and the minute
# limit charged for those only. Adaptive admits its burst (burst_multiplier 2): 10 of the
# 5/second limit, leaving 30 of the minute limit's 40.
EXPECTED = {name: (5, [(5, 0), (20, 15)]) for name in ALGORITHMS}
EXPECTED["adaptive"] = (10, [(5, 0), (20, 30)])


def frozen_clock() -> float:
    return FROZEN


def make_backend(store: str, where: str) -> Any:
    if store == "memory":
        return MemoryBackend()
    if store == "sqlite":
        return SQLiteBackend(where)
    return RedisBackend(redis.Redis(port=int(where)), use_server_time=False)


def hammer(store: str, where: str, algorithm: str, threads: int, attempts: int) -> int:
    """`threads` threads share one limiter and try `attempts` requests each on one key."""
    limiter = MultiRateLimiter(make_backend(store, where), LIMITS, algorithm,
                               clock=frozen_clock)
    admitted = [0] * threads

    def worker(i: int) -> None:
        for _ in range(attempts):
            admitted[i] += limiter.is_allowed("hot").allowed

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(admitted)


def state_after(store: str, where: str, algorithm: str, backend: Any = None) -> list[Any]:
    limiter = MultiRateLimiter(backend or make_backend(store, where), LIMITS, algorithm,
                               clock=frozen_clock)
    return [(e["limit"], e["remaining"]) for e in limiter.peek("hot").metadata["limits"]]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
def test_eight_threads(server: RedisServer, tmp_path: Any, store: str, algorithm: str) -> None:
    where = str(tmp_path / "t.db") if store == "sqlite" else str(server.port)
    server.client().flushall()
    backend = make_backend(store, where)
    limiter = MultiRateLimiter(backend, LIMITS, algorithm, clock=frozen_clock)
    admitted = [0] * 8

    def worker(i: int) -> None:
        for _ in range(50):
            admitted[i] += limiter.is_allowed("hot").allowed

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert (sum(admitted), state_after(store, where, algorithm, backend)) == EXPECTED[algorithm]


@pytest.mark.subprocess
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_four_processes_of_four_threads(server: RedisServer, process_pool: Any, tmp_path: Any,
                                        store: str, algorithm: str) -> None:
    where = str(tmp_path / "p.db") if store == "sqlite" else str(server.port)
    server.client().flushall()
    make_backend(store, where)  # create the SQLite file before the processes race for it
    futures = [process_pool.submit(hammer, store, where, algorithm, 4, 25) for _ in range(4)]
    assert (sum(f.result() for f in futures), state_after(store, where, algorithm)) == \
        EXPECTED[algorithm]


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
def test_rounds_until_the_minute_limit_binds(server: RedisServer, tmp_path: Any,
                                             store: str) -> None:
    """Five one-second rounds of 8 threads: 5 per second until the minute's 20 are used."""
    now = [1_700_000_040.0]
    where = str(tmp_path / "r.db") if store == "sqlite" else str(server.port)
    server.client().flushall()
    limiter = MultiRateLimiter(make_backend(store, where), LIMITS, "fixed_window",
                               clock=lambda: now[0])
    per_round = []

    def worker(admitted: list[int], i: int) -> None:
        for _ in range(10):
            admitted[i] += limiter.is_allowed("hot").allowed

    for _ in range(5):
        admitted = [0] * 8
        pool = [threading.Thread(target=worker, args=(admitted, i)) for i in range(8)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        per_round.append(sum(admitted))
        now[0] += 1.0
    assert per_round == [5, 5, 5, 5, 0]
