"""SQLite-file throughput: decisions/s per algorithm, one thread and four threads.

Every decision is admitted (limit far above the attempts), so each one writes its row: the
worst case. Keys rotate over 1,000 names. Four threads are measured two ways:
  * shared:   one SQLiteBackend (one connection handed between threads under a mutex) —
              the design SQLiteBackend uses;
  * separate: one SQLiteBackend per thread on the same file (four connections contending
              through SQLite's own sleep-and-retry busy handler) — the alternative.
Each figure is decisions/s, then p99 and max latency of one call.
Figures only: nothing here asserts a timing. Target: >= 20,000 decisions/s single thread.

    python bench/bench_sqlite.py [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer decisions per figure")
    parser.add_argument("--dir", help="directory for the database files (default: a temp dir)")
    args = parser.parse_args()
    n = 5_000 if args.quick else 40_000
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        print(
            f"SQLite {__import__('sqlite3').sqlite_version} file in {directory}; "
            f"{n} admitted decisions per figure, 1,000 keys, WAL, synchronous=NORMAL"
        )
        print("each column: decisions/s, p99 ms, max ms")
        print(f"{'algorithm':<24}{'1 thread':<24}{'4 threads shared':<24}4 threads separate")
        for name in LIMITERS:
            single, shared, separate = bench(name, directory, n)
            print(f"{name:<24}{single!s:<24}{shared!s:<24}{separate!s}")


if __name__ == "__main__":
    main()
