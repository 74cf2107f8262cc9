"""MultiRateLimiter: what a second limit costs, on memory and on Redis, measured in one run.

    python bench/bench_multi.py [--seconds 1.0] [--algorithm sliding_window_counter]

For each store: ns (memory) or us (Redis) per decision of the plain limiter (one limit), a
MultiRateLimiter with one limit, and one with two limits ("100000/second;1000000/minute",
high enough that every decision is admitted and steps both limits), and the ratio two-limit /
one-limit. Redis runs on a private redis-server (tests/python/redis_server.py), client
clock, one thread; a multi decision is one EVALSHA whatever the number of limits (checked
from INFO commandstats). Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable

import redis
from limiters import LIMITERS

from ratelimiter import MemoryBackend, MultiRateLimiter, RedisBackend

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from redis_server import RedisServer  # noqa: E402

ONE = "100000/second"
TWO = "100000/second;1000000/minute"


def per_call(call: Callable[[str], Any], seconds: float) -> float:
    """Seconds per call of call(key), best of 3 runs of about `seconds` / 3 each."""
    keys = [f"user:{i}" for i in range(64)]
    best = float("inf")
    for _ in range(3):
        n = 0
        start = time.perf_counter()
        deadline = start + seconds / 3
        while time.perf_counter() < deadline:
            for key in keys:
                call(key)
            n += len(keys)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def measure(backend_factory: Callable[[], Any], algorithm: str, seconds: float
            ) -> dict[str, float]:
    plain = LIMITERS[algorithm](backend_factory(), 100_000, 1.0)
    one = MultiRateLimiter(backend_factory(), ONE, algorithm, key_prefix="one:")
    two = MultiRateLimiter(backend_factory(), TWO, algorithm, key_prefix="two:")
    return {
        "plain limiter (1 limit)": per_call(plain.is_allowed, seconds),
        "MultiRateLimiter, 1 limit": per_call(one.is_allowed, seconds),
        "MultiRateLimiter, 2 limits": per_call(two.is_allowed, seconds),
    }


def report(store: str, unit: str, scale: float, figures: dict[str, float]) -> None:
    print(f"\n{store}")
    for name, value in figures.items():
        print(f"  {name:30s} {value * scale:9.2f} {unit}/decision")
    two = figures["MultiRateLimiter, 2 limits"]
    print(f"  2 limits / 1 limit (multi)     {two / figures['MultiRateLimiter, 1 limit']:9.2f}x")
    print(f"  2 limits / plain limiter       {two / figures['plain limiter (1 limit)']:9.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--algorithm", default="sliding_window_counter")
    args = parser.parse_args()
    print(f"algorithm {args.algorithm}; limits one={ONE!r} two={TWO!r}")
    report("memory", "ns", 1e9, measure(MemoryBackend, args.algorithm, args.seconds))
    with RedisServer() as server:
        client = redis.Redis(port=server.port)
        figures = measure(lambda: RedisBackend(redis.Redis(port=server.port),
                                               use_server_time=False),
                          args.algorithm, args.seconds)
        report("redis (one thread, loopback)", "us", 1e6, figures)
        # Inside Redis (INFO commandstats): the script's own time, free of client noise.
        print("  in redis (script time per EVALSHA, round trips per decision):")
        backend = RedisBackend(redis.Redis(port=server.port), use_server_time=False)
        for name, limiter in (
                ("plain limiter (1 limit)", LIMITERS[args.algorithm](backend, 100_000, 1.0)),
                ("MultiRateLimiter, 1 limit", MultiRateLimiter(backend, ONE, args.algorithm)),
                ("MultiRateLimiter, 2 limits", MultiRateLimiter(backend, TWO, args.algorithm))):
            limiter.is_allowed("warm")
            client.config_resetstat()
            for i in range(2000):
                limiter.is_allowed(f"k{i % 64}")
            stats = client.info("commandstats")["cmdstat_evalsha"]
            print(f"    {name:28s} {stats['usec_per_call']:7.2f} us, "
                  f"{stats['calls'] / 2000:.2f} round trips")


if __name__ == "__main__":
    main()
