"""What a decision costs inside Redis: each algorithm's script against a trivial script.

    python bench/bench_redis_script.py [--requests 100000] [--clients 50]

Starts a private redis-server (tests/python/redis_server.py) and measures, in the same run:

* throughput with round trips, as redis-benchmark sees it (`--clients` connections, no
  pipelining, best of 3 alternating runs): a trivial ``EVALSHA`` of ``return 1`` against the
  token-bucket script with the arguments RedisBackend sends (server clock, cost 1, binary
  reply), and where the server has Functions a trivial ``FCALL`` against the token bucket's
  function in the library the native path loads — the ratio is issue 15's target;
* the time inside Redis per decision (INFO commandstats, best of `--rounds`) of every
  algorithm's single call and, per key, of a 1,000-key is_allowed_many on the native path
  (batch scripts of 100 keys), next to the trivial script's.

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


def trivial_usec(client: Any, sha: str, calls: int = 1000) -> float:
    """Microseconds inside Redis per call of the trivial script (one pipeline of `calls`)."""
    pipe = client.pipeline(transaction=False)
    for _ in range(calls):
        pipe.execute_command("EVALSHA", sha, 0)
    client.config_resetstat()
    pipe.execute()
    return usec_per_call(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    from redis_server import RedisServer

    with RedisServer() as server:
        client = server.client()
        print(f"redis {client.info('server')['redis_version']}")
        trivial = client.script_load("return 1")
        scripts = _core.lua_scripts()
        tb_sha = client.script_load(scripts["token_bucket"])
        tb_args = ["", "1", "consume", "b", "1000000000", "277777.7"]
        # The token bucket as the native path calls it: FCALL of the library where the
        # server has Functions (a first decision loads it), else EVALSHA of the script.
        make_tb = LIMITERS["token_bucket"]
        make_tb(RedisBackend(url=server.url), 10, 1.0).is_allowed("warm")
        pairs = [("EVALSHA", ["EVALSHA", trivial, "0"],
                  ["EVALSHA", tb_sha, "1", "bench{__rand_int__}", *tb_args])]
        try:
            client.execute_command("FUNCTION", "LOAD", "REPLACE", TRIVIAL_FUNCTION)
            names = [f[1] for lib in client.function_list() for f in lib[5]
                     if f[1].endswith(b"_token_bucket")]
            if names:
                pairs.append(("FCALL", ["FCALL", "bench_trivial", "0"],
                              ["FCALL", names[0].decode(), "1", "bench{__rand_int__}",
                               *tb_args]))
        except Exception as e:  # noqa: BLE001 - a server without Functions
            print(f"(no Functions: {e})")
        if not shutil.which("redis-benchmark"):
            print("(redis-benchmark not installed: round-trip figures skipped)")
            pairs = []
        for kind, trivial_cmd, tb_cmd in pairs:
            floor = tb = 0.0
            for _ in range(3):  # alternating, best of 3 each: the least disturbed runs
                floor = max(floor, benchmark(server.port, args.requests, args.clients,
                                             *trivial_cmd))
                tb = max(tb, benchmark(server.port, args.requests, args.clients, *tb_cmd))
            print(f"redis-benchmark -c {args.clients}: trivial {kind:<7} {floor:>9,.0f}/s   "
                  f"token_bucket {kind:<7} {tb:>9,.0f}/s   = {100 * tb / floor:.0f}% of trivial")

        # Inside Redis: the best of `--rounds` rounds each (the least disturbed by other load
        # on the machine), the trivial script measured between them.
        client.flushall()
        backend = RedisBackend(url=server.url)
        keys = [f"user{i}" for i in range(1000)]
        print(f"\ninside Redis, us per decision (best of {args.rounds} rounds of 1,000):")
        print(f"{'algorithm':<24}{'trivial':>9}{'single':>9}{'/trivial':>10}{'batch':>9}"
              f"{'single/batch':>14}")
        for name, make in LIMITERS.items():
            limiter = make(backend, 1_000_000_000, 3600.0)
            base = single = batch = float("inf")
            for _ in range(args.rounds):
                base = min(base, trivial_usec(client, trivial))
                client.config_resetstat()
                for key in keys:
                    limiter.is_allowed(key)
                single = min(single, usec_per_call(client))  # FCALL on Redis >= 7, or EVALSHA
                client.config_resetstat()
                limiter.is_allowed_many(keys)
                stats = client.info("commandstats")
                batch = min(batch, sum(stats.get(f"cmdstat_{c}", {}).get("usec", 0)
                                       for c in ("evalsha", "fcall")) / len(keys))
            print(f"{name:<24}{base:>9.2f}{single:>9.2f}{single / base:>9.1f}x{batch:>9.2f}"
                  f"{single / batch:>13.1f}x")

if __name__ == "__main__":
    main()
