"""Pipelined batches: `is_allowed_many(1,000 keys)` against one `is_allowed` at a time.

    python bench/bench_redis_batch.py [--seconds 1.0] [--batch 1000] [--cluster]

Starts a private redis-server (tests/python/redis_server.py) and measures, in the same run,
decisions/s of single calls and of batches for each algorithm, on the native hiredis path
(one batch script call per 100 keys: cpp/lua/batch/_driver.lua)
and through a redis-py client (the path every non-plain client takes). With --cluster it
also starts a local 3-master cluster (tests/python/redis_cluster.py) and measures the same
on the native cluster transport (one pipeline per master) and through
redis.cluster.RedisCluster (whose pipeline also sends one round trip per master).
Single calls and batches alternate in 5 slices of --seconds/5; the best slice of each
counts. Prints figures only; never asserts timings.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable

import redis
import redis.cluster

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))

from limiters import LIMITERS  # noqa: E402
from redis_target import batch_bench_options  # noqa: E402

from ratelimiter.backends import RedisBackend  # noqa: E402


class _Wrapped(redis.Redis):
    """A redis.Redis subclass: RedisBackend runs it through the client object."""


def per_second(call: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Decisions/s of call() (which returns how many decisions it made) for ~`seconds`,
    and how many decisions it made."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += call()
    return done / (time.perf_counter() - start), done


SLICES = 5


def script_usec(server: Any) -> float:
    """Microseconds Redis spent in script calls (EVALSHA and FCALL) since the last reset."""
    stats = server.info("commandstats")
    return float(sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0) for c in ("evalsha", "fcall")))


def measure(label: str, backend: Any, seconds: float, batch: int,
            server: Any = None) -> None:
    """With `server` (a redis.Redis), also the time inside Redis per decision in the
    batches (INFO commandstats): the floor no pipelining can go below."""
    keys = [f"user{i}" for i in range(batch)]
    for name, make in LIMITERS.items():
        limiter = make(backend, 1_000_000_000, 3600.0)
        counter = iter(range(10**12))

        def single(limiter: Any = limiter, counter: Any = counter) -> int:
            limiter.is_allowed(keys[next(counter) % len(keys)])
            return 1

        def many(limiter: Any = limiter) -> int:
            limiter.is_allowed_many(keys)
            return len(keys)

        # Alternating slices, the best of each: on a shared machine a slice that another
        # process preempted says nothing about either path.
        one = batched = 0.0
        usec = float("inf")
        for _ in range(SLICES):
            one = max(one, per_second(single, seconds / SLICES)[0])
            if server is not None:
                server.config_resetstat()
            rate, decided = per_second(many, seconds / SLICES)
            batched = max(batched, rate)
            if server is not None:
                usec = min(usec, script_usec(server) / decided)
        inside = ""
        if server is not None:
            inside = f"   inside Redis {usec:5.2f} us/decision (max {1e6 / usec:>8,.0f}/s)"
        print(f"{label:<10} {name:<24} single {one:>8,.0f}/s   batch of {batch} "
              f"{batched:>8,.0f}/s   x{batched / one:5.1f}{inside}")


def main() -> None:
    args = batch_bench_options(__doc__ or "")
    from redis_server import RedisServer

    with RedisServer() as server:
        measure("native", RedisBackend(url=server.url), args.seconds, args.batch,
                server.client())
        measure("redis-py", RedisBackend(_Wrapped(port=server.port)), args.seconds, args.batch)
    if args.cluster:
        from redis_cluster import RedisCluster

        with RedisCluster() as cluster:
            measure("cluster", RedisBackend(url=cluster.url), args.seconds, args.batch)
            measure("cluster-py", RedisBackend(cluster.client()), args.seconds, args.batch)


if __name__ == "__main__":
    main()
