"""Memory-store throughput and footprint, as ratios against baselines measured in this run.

Baselines:
  * binding floor: a no-op pybind11 function taking the same (key, cost) arguments;
  * plain Python: a dict-based token bucket in pure Python that returns a bool;
  * the PyPI `token-bucket` package (MemoryStorage, returns a bool), if installed — it is
    not a dependency: `pip install token-bucket` in the bench's environment only.
Each algorithm's is_allowed is timed on one hot key and on 10,000 keys round-robin; then the
batch call (results and detail=False), then memory per key for 1,000,000 keys and the
max_keys bound, then threads deciding on disjoint keys against one thread. Figures only:
nothing here asserts a timing.

    python bench/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import os
import threading
import time
from collections.abc import Sequence
from typing import Callable

from limiters import LIMITERS

import ratelimiter
from ratelimiter import MemoryBackend, _core


class PlainPythonTokenBucket:
    """The baseline: what a careful pure-Python token bucket costs (returns a bool)."""

    def __init__(self, limit: int, window: float) -> None:
        self.capacity = float(limit)
        self.rate = limit / window
        self.buckets: dict[str, list[float]] = {}

    def is_allowed(self, key: str, cost: int = 1) -> bool:
        now = time.time()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = [self.capacity, now]
        tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= cost:
            bucket[0] = tokens - cost
            return True
        bucket[0] = tokens
        return False


def per_call_seconds(call: Callable[[str], object], keys: Sequence[str], rounds: int) -> float:
    """Best-of-`rounds` mean time of one call over `keys`."""
    best = float("inf")
    for _ in range(rounds):
        gc.disable()
        start = time.perf_counter()
        for key in keys:
            call(key)
        elapsed = time.perf_counter() - start
        gc.enable()
        best = min(best, elapsed / len(keys))
    return best


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def throughput(quick: bool) -> None:
    rounds = 3 if quick else 7
    n = 100_000 if quick else 300_000
    hot = ["user:hot"] * n
    many = [f"user:{i}" for i in range(10_000)] * (n // 10_000)
    # A huge limit keeps every decision on the admitting path, like a typical healthy
    # service; a slow refill (one per second) keeps each key's state live between its
    # requests, as a real client's is (with 10**12 per minute every state expired within
    # nanoseconds, so each decision re-inserted its key).
    limit, window = 10**9, 1e9

    floor_hot = per_call_seconds(lambda k: _core._noop(k, 1), hot, rounds)
    floor_many = per_call_seconds(lambda k: _core._noop(k, 1), many, rounds)
    plain = PlainPythonTokenBucket(limit, window)
    plain_hot = per_call_seconds(plain.is_allowed, hot, rounds)
    plain_many = per_call_seconds(plain.is_allowed, many, rounds)

    package = token_bucket_package(limit, window)
    pkg_hot = pkg_many = float("nan")
    if package is not None:
        pkg_hot = per_call_seconds(package.consume, hot, rounds)
        pkg_many = per_call_seconds(package.consume, many, rounds)

    print(f"binding floor (no-op pybind11 call): {1e9 * floor_hot:7.1f} ns/call")
    print(f"plain-Python dict token bucket:      {1e9 * plain_hot:7.1f} ns/call hot, "
          f"{1e9 * plain_many:.1f} ns/call over 10,000 keys")
    if package is None:
        print("token-bucket package:                not installed, skipped "
              "(pip install token-bucket in this environment to compare)\n")
    else:
        print(f"token-bucket package (PyPI):         {1e9 * pkg_hot:7.1f} ns/call hot, "
              f"{1e9 * pkg_many:.1f} ns/call over 10,000 keys\n")
    print(f"{'algorithm':<24}{'keys':>7}{'decisions/s':>13}{'ns/call':>9}"
          f"{'x floor':>9}{'vs plain py':>13}{'vs token-bucket':>17}")
    for name, cls in LIMITERS.items():
        for label, keys, floor, baseline, pkg in (
            ("1", hot, floor_hot, plain_hot, pkg_hot),
            ("10,000", many, floor_many, plain_many, pkg_many),
        ):
            limiter = cls(MemoryBackend(), limit, window)
            t = per_call_seconds(limiter.is_allowed, keys, rounds)
            vs_pkg = "-" if package is None else f"{pkg / t:.2f}x"
            print(f"{name:<24}{label:>7}{1 / t:>13,.0f}{1e9 * t:>9.1f}"
                  f"{t / floor:>9.2f}{baseline / t:>12.2f}x{vs_pkg:>17}")

    print("\nbatch: is_allowed_many(chunk of 1,000 keys), 10,000 keys round-robin")
    chunks = [many[i:i + 1000] for i in range(0, len(many), 1000)]
    for name in ("fixed_window", "token_bucket", "gcra"):
        limiter = LIMITERS[name](MemoryBackend(), limit, window)
        single = per_call_seconds(limiter.is_allowed, many, rounds)
        batch = per_call_seconds(limiter.is_allowed_many, chunks, rounds) / 1000
        bools = per_call_seconds(functools.partial(limiter.is_allowed_many, detail=False),
                                 chunks, rounds) / 1000
        print(f"{name:<24}{1 / batch:>13,.0f} decisions/s  {single / batch:5.2f}x the single call;"
              f"  detail=False {1 / bools:>11,.0f}/s  {single / bools:5.2f}x")


def token_bucket_package(limit: int, window: float) -> object | None:
    """The PyPI `token-bucket` limiter on its in-memory storage, or None if not installed."""
    try:
        import token_bucket
    except ImportError:
        return None
    return token_bucket.Limiter(limit / window, limit, token_bucket.MemoryStorage())


def threads(quick: bool) -> None:
    """Decisions/s of 2 threads on disjoint key sets against 1 thread, in this run.

    Each thread decides on its own 10,000 keys. Single calls hold the GIL (a step is cheaper
    than releasing it), so they cannot scale; batches release it around the store. A batch
    of 1,000 keys decides in ~20 us, about what handing the GIL to the other thread and back
    costs, so larger batches are what scale (both sizes are printed).
    """
    # Long enough (0.1-1 s per run) that a scheduler hiccup on a shared machine is noise.
    singles = 200_000 if quick else 1_000_000
    batched = 2_000_000 if quick else 8_000_000
    limit, window = 10**9, 1e9
    cores = len(os.sched_getaffinity(0))
    print(f"\nthreads on disjoint keys (10,000 keys each; {cores} cores available here)")

    def rate(workers: int, batch: int) -> float:
        limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), limit, window)
        n = batched if batch else singles
        sets = [[f"t{w}:{i}" for i in range(10_000)] * (n // 10_000) for w in range(workers)]
        size = batch or 1  # 0: single calls
        chunked = [[keys[i:i + size] for i in range(0, len(keys), size)] for keys in sets]
        start_line = threading.Barrier(workers + 1)

        def work(w: int) -> None:
            start_line.wait()
            if batch:
                for chunk in chunked[w]:
                    limiter.is_allowed_many(chunk, detail=False)
            else:
                for key in sets[w]:
                    limiter.is_allowed(key)

        pool = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in pool:
            t.start()
        gc.disable()
        start_line.wait()
        start = time.perf_counter()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
        gc.enable()
        return workers * n / elapsed

    # The control: hashing 64 MiB releases the GIL throughout, so this is the most any
    # two threads can gain on this machine right now (other processes take cores too).
    data = b"x" * (64 << 20)

    def hashing(workers: int) -> float:
        pool = [threading.Thread(target=lambda: hashlib.sha256(data).digest())
                for _ in range(workers)]
        start = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return workers / (time.perf_counter() - start)

    one = two = 0.0
    for _ in range(3):
        one = max(one, hashing(1))
        two = max(two, hashing(2))
    print(f"{'control: sha256 of 64 MiB (no GIL)':<38} {'':>33}{two / one:4.2f}x")
    for label, batch in (("is_allowed", 0), ("is_allowed_many(1,000, detail=False)", 1000),
                         ("is_allowed_many(10,000, detail=False)", 10_000)):
        one = two = 0.0
        for _ in range(3):  # interleaved, so both see the same machine load
            one = max(one, rate(1, batch))
            two = max(two, rate(2, batch))
        print(f"{label:<38} 1 thread {one:>12,.0f}/s   2 threads {two:>12,.0f}/s   "
              f"{two / one:4.2f}x")


def footprint(quick: bool) -> None:
    n = 200_000 if quick else 1_000_000
    keys = [f"k{i:07d}" for i in range(n)]  # built before measuring: their cost is the caller's
    key_len = len(keys[0])
    backend = MemoryBackend()
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 100, 60.0, clock=lambda: 1000.0)
    gc.collect()
    before = rss_bytes()
    for key in keys:
        limiter.is_allowed(key)
    grown = rss_bytes() - before
    print(f"\nmemory: {n:,} token-bucket keys of {key_len} bytes held: {len(backend):,}; "
          f"RSS grew {grown / n:.1f} bytes/key ({grown / n - key_len:.1f} over the key length)")

    bounded = MemoryBackend(max_keys=100_000)
    limiter = ratelimiter.TokenBucketRateLimiter(bounded, 100, 60.0, clock=lambda: 1000.0)
    peak = 0
    for i, key in enumerate(keys):
        limiter.is_allowed(key)
        if i % 1000 == 0:
            peak = max(peak, len(bounded))
    peak = max(peak, len(bounded))
    print(f"max_keys=100,000 after {n:,} distinct keys: holds {len(bounded):,} "
          f"(peak sampled {peak:,}), evictions {bounded.evictions:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description="memory-store benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer calls, smaller footprint")
    args = parser.parse_args()
    # The footprint first: memory freed by the other benchmarks (their keys' states) would
    # be reused by its keys without growing the RSS, and read as a smaller footprint.
    footprint(args.quick)
    throughput(args.quick)
    threads(args.quick)


if __name__ == "__main__":
    main()
