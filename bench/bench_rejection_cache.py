"""A hot over-limit key with and without ``cache_rejections``: Redis traffic and speed.

    python bench/bench_rejection_cache.py [--url redis://127.0.0.1:6379/0] [--requests 10000]

Without --url a private redis-server is started (tests/python/redis_server.py). For each
algorithm, on the native (hiredis) path, the client (redis-py) path and AsyncRedisBackend:
`--requests` decisions on one key far over its limit (limit 10 per hour), once on a backend
without the cache and once with it; prints the share of requests that reached Redis (INFO
commandstats: script runs, the 20 requests that take the key over its limit included)
and decisions/s of each, and their ratio. The adaptive algorithm
bypasses the cache by design (see rejection_cache.hpp), so its ratio stays near 1.
Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import redis
import redis.asyncio
from limiters import LIMITERS
from redis_target import redis_url

from ratelimiter.backends import AsyncRedisBackend, RedisBackend


class _ClientRedis(redis.Redis):  # type: ignore[type-arg]
    """Not a plain redis.Redis: RedisBackend runs its scripts through the client object."""


def script_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0)
               for name in ("evalsha", "eval", "fcall", "fcall_ro"))


def measure_sync(client: Any, backend: Any, cls: Any, requests: int) -> tuple[float, float]:
    """(share of requests reaching Redis, decisions/s) for one hot over-limit key."""
    limiter = cls(backend, 10, 3600)
    client.config_resetstat()
    for _ in range(20):  # over the limit before timing (counted in the share)
        limiter.is_allowed("hot")
    start = time.perf_counter()
    for _ in range(requests):
        limiter.is_allowed("hot")
    elapsed = time.perf_counter() - start
    return script_calls(client) / (requests + 20), requests / elapsed


def measure_async(client: Any, url: str, cls: Any, requests: int,
                  cache: bool) -> tuple[float, float]:
    async def run() -> float:
        backend = AsyncRedisBackend(redis.asyncio.Redis.from_url(url), key_prefix=prefix,
                                    cache_rejections=cache)
        limiter = cls(backend, 10, 3600)
        client.config_resetstat()
        for _ in range(20):
            await limiter.is_allowed_async("hot")
        start = time.perf_counter()
        for _ in range(requests):
            await limiter.is_allowed_async("hot")
        elapsed = time.perf_counter() - start
        await backend.close()
        return elapsed

    prefix = f"bench-async-{cache}:"
    elapsed = asyncio.run(run())
    return script_calls(client) / (requests + 20), requests / elapsed


def run(url: str, requests: int) -> None:
    client = redis.Redis.from_url(url)
    print(f"redis {client.info('server')['redis_version']} at {url}; {requests} requests "
          f"on one key over its limit")
    print(f"{'path':<8}{'algorithm':<34}{'to Redis':>10}{'uncached/s':>12}{'cached/s':>12}"
          f"{'ratio':>8}")
    for path in ("native", "client", "async"):
        for cls in LIMITERS.values():
            figures = []
            for cache in (False, True):
                if path == "async":
                    figures.append(measure_async(client, url, cls, requests, cache))
                    continue
                user = client if path == "native" else _ClientRedis.from_url(url)
                backend = RedisBackend(user, key_prefix=f"bench-{path}-{cache}:",
                                       cache_rejections=cache)
                figures.append(measure_sync(client, backend, cls, requests))
            (_, plain), (share, cached) = figures
            print(f"{path:<8}{cls.__name__:<34}{100 * share:>9.2f}%{plain:>12,.0f}"
                  f"{cached:>12,.0f}{cached / plain:>7.1f}x")
    for key in client.scan_iter("bench-*"):
        client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing Redis (default: start a private one)")
    parser.add_argument("--requests", type=int, default=10_000, help="per measurement")
    args = parser.parse_args()
    with redis_url(args.url) as url:
        run(url, args.requests)


if __name__ == "__main__":
    main()
