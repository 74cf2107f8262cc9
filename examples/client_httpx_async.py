"""Many asyncio tasks calling one API through httpx: rate and in-flight concurrency together.

    python examples/client_httpx_async.py           # against a local demo API it starts
    python examples/client_httpx_async.py --url https://api.example.com/items --rate 20

``AsyncRateLimitedTransport`` waits for quota with ``acquire_async`` (never blocking the
event loop; tasks are served in arrival order) and lets at most ``--concurrency`` requests
be in flight at once; 429/503 answers are retried after ``Retry-After``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Optional

import httpx
from _demo_api import serve_demo_api

from ratelimiter import GCRARateLimiter, MemoryBackend
from ratelimiter.client import AsyncRateLimitedTransport, RetryPolicy


async def call_api(url: str, rate: int, count: int, concurrency: int) -> Counter[int]:
    limiter = GCRARateLimiter(MemoryBackend(), rate, 1.0, burst=1)
    transport = AsyncRateLimitedTransport(limiter, max_concurrency=concurrency,
                                          retry=RetryPolicy(max_retries=3))
    async with httpx.AsyncClient(transport=transport) as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(count)))
    return Counter(response.status_code for response in responses)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the API to call (default: a local demo API)")
    parser.add_argument("--rate", type=int, default=20, help="requests per second")
    parser.add_argument("--count", type=int, default=40, help="concurrent tasks")
    parser.add_argument("--concurrency", type=int, default=4, help="most in flight")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.url:
        codes = asyncio.run(call_api(args.url, args.rate, args.count, args.concurrency))
        server = ""
    else:
        # The demo API holds each request 50 ms, so tasks really overlap.
        with serve_demo_api(args.rate, hold=0.05) as (url, api):
            codes = asyncio.run(call_api(url + "/items", args.rate, args.count,
                                         args.concurrency))
        server = (f"; the server answered {dict(sorted(api.statuses.items()))}, "
                  f"at most {api.peak_in_flight} in flight")
    elapsed = time.monotonic() - started
    print(f"{args.count} tasks in {elapsed:.2f} s: {dict(sorted(codes.items()))}{server}")


if __name__ == "__main__":
    main()
