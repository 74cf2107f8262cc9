"""Async pipelined batches: `await is_allowed_many_async(1,000 keys)` against one
`await is_allowed_async` at a time, on AsyncRedisBackend (redis.asyncio).

    python bench/bench_async_batch.py [--seconds 1.0] [--batch 1000] [--cluster]

Starts a private redis-server (tests/python/redis_server.py) and measures, in the same run
and on one event loop, decisions/s of single async calls and of async batches for each
algorithm, and prints their ratio (issue 13's target: >= 8x). With --cluster it also
measures both on a local 3-master cluster through redis.asyncio.cluster.RedisCluster
(whose pipeline sends one round trip per master). Prints figures only; never asserts.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable
from typing import Any, Callable

import redis.asyncio
import redis.asyncio.cluster

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))

from limiters import LIMITERS  # noqa: E402
from redis_target import batch_bench_options  # noqa: E402

from ratelimiter.backends import AsyncRedisBackend  # noqa: E402


async def per_second(call: Callable[[], Awaitable[int]], seconds: float) -> float:
    """Decisions/s of ``await call()`` (which returns how many decisions it made)."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += await call()
    return done / (time.perf_counter() - start)


async def single_and_batch(limiter: Any, keys: list[str], seconds: float
                           ) -> tuple[float, float]:
    counter = iter(range(10**12))

    async def single() -> int:
        await limiter.is_allowed_async(keys[next(counter) % len(keys)])
        return 1

    async def many() -> int:
        await limiter.is_allowed_many_async(keys)
        return len(keys)

    await many()  # connect (every node) and load the script first
    return await per_second(single, seconds), await per_second(many, seconds)


async def measure(label: str, client: Any, seconds: float, batch: int) -> list[float]:
    backend = AsyncRedisBackend(client, timeout=30.0)
    keys = [f"user{i}" for i in range(batch)]
    ratios = []
    for name, make in LIMITERS.items():
        one, batched = await single_and_batch(make(backend, 1_000_000_000, 3600.0), keys,
                                              seconds)
        ratios.append(batched / one)
        print(f"{label:<8} {name:<24} single {one:>8,.0f}/s   batch of {batch} "
              f"{batched:>8,.0f}/s   x{batched / one:5.1f}", flush=True)
    await backend.close()
    return ratios


def main() -> None:
    args = batch_bench_options(__doc__ or "")
    from redis_server import RedisServer

    with RedisServer() as server:
        ratios = asyncio.run(measure("redis", redis.asyncio.Redis(port=server.port),
                                     args.seconds, args.batch))
    print(f"single Redis: batch/single per decision x{min(ratios):.1f} (min) "
          f"x{max(ratios):.1f} (max); target >= 8x")
    if args.cluster:
        from redis_cluster import RedisCluster

        with RedisCluster() as cluster:
            client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1",
                                                        port=cluster.ports[0])
            asyncio.run(measure("cluster", client, args.seconds, args.batch))


if __name__ == "__main__":
    main()
