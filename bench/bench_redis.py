"""RedisBackend throughput: decisions/s per algorithm against the Redis round-trip floor.

    python bench/bench_redis.py [--url redis://127.0.0.1:6379/0] [--seconds 1.0]

Without --url a private redis-server is started (tests/python/redis_server.py). For each
algorithm: decisions/s on one thread (one connection) and on 4 threads, next to the floor
measured in the same run — a trivial ``EVALSHA`` of ``return 1`` through the same native
connection pool — and the Redis round trips per decision (from INFO commandstats).
Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any, Callable

import redis
from limiters import LIMITERS
from redis_target import redis_url

from ratelimiter.backends import RedisBackend


def rate(call: Callable[[int], None], threads: int, seconds: float) -> float:
    """Calls per second of call(i) from `threads` threads for about `seconds`."""
    counts = [0] * threads
    stop = threading.Event()

    def worker(t: int) -> None:
        i = 0
        while not stop.is_set():
            for _ in range(100):
                call(i)
                i += 1
        counts[t] = i

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for th in pool:
        th.start()
    time.sleep(seconds)
    stop.set()
    for th in pool:
        th.join()
    return sum(counts) / (time.perf_counter() - start)


def run(url: str, seconds: float) -> None:
    client = redis.Redis.from_url(url)
    backend = RedisBackend(url=url)
    native = backend._native
    floor_sha = client.script_load("return 1")
    floor = {t: rate(lambda i: native.command("EVALSHA", floor_sha, "0"), t, seconds)
             for t in (1, 4)}
    print(f"redis {client.info('server')['redis_version']} at {url}")
    print(f"floor (trivial EVALSHA): {floor[1]:>9,.0f}/s 1 thread   {floor[4]:>9,.0f}/s 4 threads")
    print(f"{'algorithm':<32}{'1 thread':>12}{'% floor':>9}{'4 threads':>12}{'% floor':>9}"
          f"{'RTT/dec':>9}")
    for cls in LIMITERS.values():
        limiter: Any = cls(backend, 1_000_000_000, 60)
        keys = [f"bench:{i}" for i in range(1000)]
        def decide(i: int, limiter: Any = limiter, keys: list[str] = keys) -> None:
            limiter.is_allowed(keys[i % 1000])

        figures = {t: rate(decide, t, seconds) for t in (1, 4)}
        client.config_resetstat()
        n = 2000
        for i in range(n):
            limiter.is_allowed(keys[i % 1000])
        stats = client.info("commandstats")
        round_trips = sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0)
                          for c in ("evalsha", "eval", "fcall", "script|load")) / n
        print(f"{cls.__name__:<32}{figures[1]:>12,.0f}{100 * figures[1] / floor[1]:>8.0f}%"
              f"{figures[4]:>12,.0f}{100 * figures[4] / floor[4]:>8.0f}%{round_trips:>9.2f}")
    for key in client.scan_iter("rl:{bench:*"):
        client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing Redis (default: start a private one)")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    args = parser.parse_args()
    with redis_url(args.url) as url:
        run(url, args.seconds)


if __name__ == "__main__":
    main()
