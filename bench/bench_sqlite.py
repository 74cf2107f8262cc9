"""SQLite-file throughput: decisions/s per algorithm, one thread and four threads.

Every decision is admitted (limit far above the attempts), so each one writes its row: the
worst case. Keys rotate over 1,000 names. Four threads are measured two ways:
  * shared:   one SQLiteBackend (one connection handed between threads under a mutex) —
              the design SQLiteBackend uses;
  * separate: one SQLiteBackend per thread on the same file (four connections contending
              through SQLite's own sleep-and-retry busy handler) — the alternative.
Each figure is decisions/s, then p99 and max latency of one call.
Figures only: nothing here asserts a timing. Target: >= 20,000 decisions/s single thread.

A second table (alone with --log-only) is the sliding-window log's per-decision cost with
the log full, at limits 50, 100 and 100,000, against a token-bucket decision on the same
file in the same run (the ratio is what to compare across machines). The log is filled by
writing its state row directly as one blob (filling it with 100,000 real decisions took
minutes when each rewrote the whole blob). A log of up to 64 entries stays a blob (limit 50);
a longer one moves to one row per entry on its first decision (excluded from the timing).
The clock is fake: each decision is 1/1024 s after the last and the window is limit/1024 s,
so each decision expires exactly one entry and adds one (the log stays full).

    python bench/bench_sqlite.py [--quick] [--log-only] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import struct
import tempfile
import threading
import time
from typing import Callable

from limiters import LIMITERS

import ratelimiter
from ratelimiter.backends import SQLiteBackend

KEYS = [f"user:{i}" for i in range(1_000)]


def make_limiter(name: str, backend: SQLiteBackend) -> ratelimiter.BaseAlgorithm:
    # A huge limit, so every decision admits and writes; the sliding log stays short
    # because the window is short (its state is bounded by what the window holds).
    window = 0.001 if name == "sliding_window" else 3600.0
    factory: Callable[..., ratelimiter.BaseAlgorithm] = LIMITERS[name]
    return factory(backend, 10**12, window)


class Figure:
    """Throughput and tail latency of one run."""

    def __init__(self, rate: float, latencies: list[float]) -> None:
        latencies.sort()
        self.rate = rate
        self.p99_ms = latencies[int(len(latencies) * 0.99)] * 1e3
        self.max_ms = latencies[-1] * 1e3

    def __str__(self) -> str:
        return f"{self.rate:>8,.0f} {self.p99_ms:>5.2f} {self.max_ms:>6.1f}"


def run_threads(limiters: list[ratelimiter.BaseAlgorithm], per_thread: int) -> Figure:
    """Decisions/s (and per-call latency) with one thread per limiter object."""
    barrier = threading.Barrier(len(limiters) + 1)
    latencies: list[float] = []

    def work(limiter: ratelimiter.BaseAlgorithm, offset: int) -> None:
        is_allowed = limiter.is_allowed
        clock = time.perf_counter
        mine = []
        barrier.wait()
        for i in range(per_thread):
            t0 = clock()
            is_allowed(KEYS[(i + offset) % len(KEYS)])
            mine.append(clock() - t0)
        latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(lim, 250 * n)) for n, lim in enumerate(limiters)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return Figure(per_thread * len(limiters) / (time.perf_counter() - start), latencies)


def bench(name: str, directory: str, n: int) -> tuple[Figure, Figure, Figure]:
    path = os.path.join(directory, f"{name}.db")
    with SQLiteBackend(path) as backend:
        single = run_threads([make_limiter(name, backend)], n)
        shared_limiter = make_limiter(name, backend)
        shared = run_threads([shared_limiter] * 4, n // 4)
    backends = [SQLiteBackend(path) for _ in range(4)]
    try:
        separate = run_threads([make_limiter(name, b) for b in backends], n // 4)
    finally:
        for b in backends:
            b.close()
    return single, shared, separate


class FakeClock:
    """A clock the benchmark advances by hand (epoch-scale, as in production)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


EPOCH = 1_700_000_000.0
TICK = 1.0 / 1024  # exact in binary, so entry times and expiries are exact at epoch scale


def fill_log_blob(path: str, key: str, limit: int, window: float) -> None:
    """Writes a full sliding log (`limit` entries, one unit each, TICK apart) for `key` as one
    blob: rl_state(algo=1, key, [t1, n1, t2, n2, ...] as host doubles)."""
    times = [EPOCH + i * TICK for i in range(limit)]
    blob = struct.pack(f"={2 * limit}d", *(x for t in times for x in (t, 1.0)))
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT OR REPLACE INTO rl_state(algo, key, state, expires_at) VALUES(1, ?, ?, ?)",
            (key, blob, times[-1] + window),
        )
    db.close()


def per_decision_us(limiter: ratelimiter.BaseAlgorithm, clock: FakeClock, n: int) -> float:
    """Mean microseconds per admitted decision on key "k", the clock stepping TICK each."""
    is_allowed = limiter.is_allowed
    start = time.perf_counter()
    for _ in range(n):
        clock.now += TICK
        if not is_allowed("k").allowed:
            raise AssertionError("the benchmark expects every decision admitted")
    return (time.perf_counter() - start) / n * 1e6


def bench_log(directory: str, n: int) -> None:
    print(f"\nsliding-window log, log full, {n} admitted decisions each, one key")
    print(f"{'limit':>9} {'sliding log us':>15} {'token bucket us':>16} {'ratio':>7}")
    for limit in (50, 100, 100_000):
        path = os.path.join(directory, f"log-{limit}.db")
        window = limit * TICK
        with SQLiteBackend(path) as backend:  # creates the tables
            pass
        fill_log_blob(path, "k", limit, window)
        clock = FakeClock(EPOCH + (limit - 1) * TICK)
        bucket_clock = FakeClock(EPOCH)
        with SQLiteBackend(path) as backend:
            log = ratelimiter.SlidingWindowRateLimiter(backend, limit, window, clock=clock)
            bucket = ratelimiter.TokenBucketRateLimiter(
                backend, 10**12, 3600.0, clock=bucket_clock
            )
            per_decision_us(log, clock, 1)  # first decision: a long blob moves to rows
            per_decision_us(bucket, bucket_clock, 1)
            log_us = per_decision_us(log, clock, n)
            if log.peek("k").remaining != 0:  # still full: `limit` units in the window
                raise AssertionError("the log was not full during the measurement")
            bucket_us = per_decision_us(bucket, bucket_clock, n)
        print(f"{limit:>9,} {log_us:>15.1f} {bucket_us:>16.1f} {log_us / bucket_us:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions per figure")
    parser.add_argument("--log-only", action="store_true", help="only the sliding-log table")
    parser.add_argument("--dir", help="directory for the database files (default: a temp dir)")
    args = parser.parse_args()
    n = 5_000 if args.quick else 40_000
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        print(
            f"SQLite {__import__('sqlite3').sqlite_version} file in {directory}; "
            f"{n} admitted decisions per figure, 1,000 keys, WAL, synchronous=NORMAL"
        )
        if not args.log_only:
            print("each column: decisions/s, p99 ms, max ms")
            print(f"{'algorithm':<24}{'1 thread':<24}{'4 threads shared':<24}4 threads separate")
            for name in LIMITERS:
                single, shared, separate = bench(name, directory, n)
                print(f"{name:<24}{single!s:<24}{shared!s:<24}{separate!s}")
        bench_log(directory, 500 if args.quick else 2_000)


if __name__ == "__main__":
    main()
