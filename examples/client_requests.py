"""Calling a rate-limited API with requests: wait for quota, honour Retry-After, back off.

    python examples/client_requests.py              # against a local demo API it starts
    python examples/client_requests.py --url https://api.example.com/items --rate 5

The demo API allows ``--rate`` requests/second (our own middleware). The client spends the
same budget, evenly (GCRA without burst), so it never sees a 429 and loses no time; if the
server refuses anyway, ``Retry-After`` is honoured and the retry waits exactly that long.
With a ``RedisBackend`` instead of ``MemoryBackend`` every process shares the one budget.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Optional

from _demo_api import serve_demo_api

from ratelimiter import GCRARateLimiter, MemoryBackend
from ratelimiter.client import CircuitBreaker, RateLimitedSession, RetryPolicy


def call_api(url: str, rate: int, count: int) -> Counter[int]:
    # `rate` requests per second, one every 1/rate s; the key is the URL's host by default.
    limiter = GCRARateLimiter(MemoryBackend(), rate, 1.0, burst=1)
    retry = RetryPolicy(max_retries=3, backoff_max=30, budget=60)
    codes: Counter[int] = Counter()
    with RateLimitedSession(limiter, retry=retry, breaker=CircuitBreaker()) as session:
        for _ in range(count):
            codes[session.get(url).status_code] += 1
    return codes


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the API to call (default: a local demo API)")
    parser.add_argument("--rate", type=int, default=5, help="requests per second")
    parser.add_argument("--count", type=int, default=15, help="requests to send")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.url:
        codes = call_api(args.url, args.rate, args.count)
        server = ""
    else:
        with serve_demo_api(args.rate) as (url, api):
            codes = call_api(url + "/items", args.rate, args.count)
        server = f"; the server answered {dict(sorted(api.statuses.items()))}"
    elapsed = time.monotonic() - started
    print(f"sent {args.count} requests in {elapsed:.2f} s: {dict(sorted(codes.items()))}{server}")


if __name__ == "__main__":
    main()
