"""Redis Cluster figures, in one run: decisions/s from 4 client processes against one Redis
node and against a local 3-master cluster, and the failover gap.

    python bench/bench_redis_cluster.py [--seconds 2.0]

Starts a private redis-server (tests/python/redis_server.py) and a 3-master + 3-replica
cluster (tests/python/redis_cluster.py, cluster-node-timeout 1 s). Each process runs a token
bucket on its own keys through the native path (redis:// / redis+cluster://). The failover
gap is the time from SIGKILL of a master to the first decision (not an on_error answer) on a
key of its slots, for the native path and for redis-py's RedisCluster. Every server shares
the machine's cores with the clients, so on a small machine the cluster cannot show more
than its overhead; the ratio is what to read. Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))

import redis.cluster  # noqa: E402
from redis.crc import key_slot  # noqa: E402

from ratelimiter import RedisBackend, TokenBucketRateLimiter  # noqa: E402


def hammer(url: str, worker: int, seconds: float) -> int:
    """Decisions made in `seconds` by one process on 1,000 keys of its own."""
    limiter = TokenBucketRateLimiter(RedisBackend(url=url), 1_000_000_000, 3600.0)
    keys = [f"w{worker}-k{i}" for i in range(1000)]
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            limiter.is_allowed(keys[done % 1000])
            done += 1
    return done


def throughput(pool: ProcessPoolExecutor, url: str, seconds: float) -> float:
    start = time.perf_counter()
    futures = [pool.submit(hammer, url, w, seconds) for w in range(4)]
    total = sum(f.result() for f in futures)
    return total / (time.perf_counter() - start)


def failover_gap(cluster: Any, backend: RedisBackend) -> float:
    """Seconds from SIGKILL of a master to the first real decision on one of its keys."""
    limiter = TokenBucketRateLimiter(backend, 1_000_000, 3600.0)
    victim = cluster.masters()[0]
    key = next(k for k in (f"gap{i}" for i in range(100_000))
               if cluster.master_of_slot(key_slot(
                   backend.storage_key(k, "token_bucket").encode())) == victim)
    limiter.is_allowed(key)
    killed = time.monotonic()
    cluster.kill(victim)
    while limiter.is_allowed(key).metadata.get("on_error"):
        time.sleep(0.005)
    gap = time.monotonic() - killed
    cluster.start_node(victim)  # back as a replica, for the next measurement
    cluster.wait_ok()
    cluster.wait_replicas()
    return gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    from redis_cluster import RedisCluster
    from redis_server import RedisServer

    context = multiprocessing.get_context("spawn")
    with RedisServer() as server, RedisCluster() as cluster, \
            ProcessPoolExecutor(4, mp_context=context) as pool:
        throughput(pool, server.url, 0.2)  # warm the processes up
        single = throughput(pool, server.url, args.seconds)
        clustered = throughput(pool, cluster.url, args.seconds)
        print(f"4 processes, token bucket, native: 1 node {single:,.0f}/s   3-master cluster "
              f"{clustered:,.0f}/s   x{clustered / single:.2f}")
        native = RedisBackend(url=cluster.url, on_error="deny", timeout=0.5,
                              connect_timeout=0.2)
        print(f"failover gap (kill -> first real decision), native:   "
              f"{failover_gap(cluster, native):.2f} s")
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[1],
                                            socket_timeout=0.5, socket_connect_timeout=0.2)
        python = RedisBackend(client, on_error="deny")
        print(f"failover gap (kill -> first real decision), redis-py: "
              f"{failover_gap(cluster, python):.2f} s")


if __name__ == "__main__":
    main()
