"""What a decision costs inside Redis: each algorithm's script against a trivial script.

    python bench/bench_redis_script.py [--requests 100000] [--clients 50]

Starts a private redis-server (tests/python/redis_server.py) and measures, in the same run:

* throughput with round trips, as redis-benchmark sees it (`--clients` connections, no
  pipelining): a trivial ``EVALSHA`` of ``return 1`` (and ``FCALL`` of a trivial function
  where the server has Functions) against the token-bucket script with the arguments
  RedisBackend sends (server clock, cost 1, binary reply) — the ratio is issue 15's target;
* the time inside Redis per call (INFO commandstats) of every algorithm's single-key script
  and, per key, of its batch script (is_allowed_many on the native path), next to the
  trivial script's.

Prints figures only; never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))

from limiters import LIMITERS  # noqa: E402

from ratelimiter import _core  # noqa: E402
from ratelimiter.backends import RedisBackend  # noqa: E402

TRIVIAL_FUNCTION = "#!lua name=bench_trivial\nredis.register_function('bench_trivial', " \
                   "function(keys, args) return 1 end)"


def benchmark(port: int, requests: int, clients: int, *command: str) -> float:
    """Requests/s of `command` by redis-benchmark (keys `__rand_int__` over 1,000)."""
    out = subprocess.run(
        ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(requests),
         "-c", str(clients), "-r", "1000", "-q", *command],
        check=True, capture_output=True, text=True).stdout
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])


def usec_per_call(client: Any) -> float:
    """Microseconds inside Redis per script call (EVALSHA or FCALL) since the last reset."""
    stats = client.info("commandstats")
    usec = calls = 0
    for c in ("evalsha", "fcall"):
        usec += stats.get(f"cmdstat_{c}", {}).get("usec", 0)
        calls += stats.get(f"cmdstat_{c}", {}).get("calls", 0)
    return float(usec) / calls


def inside(client: Any, sha: str, argv: list[str], keys: int, calls: int = 20_000) -> float:
    """Microseconds inside Redis per call of script `sha` (pipelined, over `keys` keys)."""
    pipe = client.pipeline(transaction=False)
    client.config_resetstat()
    for i in range(calls):
        pipe.execute_command("EVALSHA", sha, 1, f"bench{{k{i % keys}}}", *argv)
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return usec_per_call(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    from redis_server import RedisServer

    with RedisServer() as server:
        client = server.client()
        print(f"redis {client.info('server')['redis_version']}")
        trivial = client.script_load("return 1")
        scripts = _core.lua_scripts()
        tb_sha = client.script_load(scripts["token_bucket"])
        tb_args = ["", "1", "consume", "b", "1000000000", "277777.7"]
        if shutil.which("redis-benchmark"):
            floor = benchmark(server.port, args.requests, args.clients, "EVALSHA", trivial, "0")
            tb = benchmark(server.port, args.requests, args.clients, "EVALSHA", tb_sha, "1",
                           "bench{__rand_int__}", *tb_args)
            print(f"redis-benchmark -c {args.clients}: trivial EVALSHA {floor:>9,.0f}/s   "
                  f"token_bucket {tb:>9,.0f}/s   = {100 * tb / floor:.0f}% of trivial")
            try:
                client.execute_command("FUNCTION", "LOAD", "REPLACE", TRIVIAL_FUNCTION)
                fcall = benchmark(server.port, args.requests, args.clients,
                                  "FCALL", "bench_trivial", "0")
                print(f"{'':<21}trivial FCALL   {fcall:>9,.0f}/s   "
                      f"token_bucket = {100 * tb / fcall:.0f}% of trivial FCALL")
            except Exception as e:  # noqa: BLE001 - a server without Functions
                print(f"(no FCALL: {e})")
        else:
            print("(redis-benchmark not installed: round-trip figures skipped)")

        client.flushall()
        base = inside(client, trivial, [], 1000)
        print(f"\ninside Redis per call: trivial EVALSHA {base:.2f} us")
        print(f"{'algorithm':<24}{'single':>10}{'x trivial':>11}{'batch/key':>11}"
              f"{'single/batch':>14}")
        backend = RedisBackend(url=server.url)
        keys = [f"user{i}" for i in range(1000)]
        for name, make in LIMITERS.items():
            limiter = make(backend, 1_000_000_000, 3600.0)
            limiter.is_allowed(keys[0])  # the argument list RedisBackend sends, recorded:
            client.config_resetstat()
            for _ in range(20):
                limiter.is_allowed_many(keys)
            batch = client.info("commandstats")["cmdstat_evalsha"]["usec"] / (20 * len(keys))
            # single calls: FCALL where the server has Functions, else EVALSHA
            client.config_resetstat()
            for i in range(5000):
                limiter.is_allowed(keys[i % 1000])
            single = usec_per_call(client)
            print(f"{name:<24}{single:>8.2f}us{single / base:>10.1f}x{batch:>9.2f}us"
                  f"{single / batch:>13.1f}x")


if __name__ == "__main__":
    main()
