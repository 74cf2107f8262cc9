"""Client-side waiting: what acquire costs when quota is there, and how late waiters wake.

  * overhead: ``acquire`` vs ``is_allowed`` on the memory store when quota is available
    (one hot key, and 1,000 keys round-robin), as a ratio measured in this run;
  * wake-up error: a waiter told to wait ``retry_after`` is admitted how much later than
    that (median and p99), for threads (``time.sleep``) and tasks (``asyncio.sleep``).
Figures only: nothing here asserts a timing.

    python bench/bench_client.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Callable

from ratelimiter import GCRARateLimiter, MemoryBackend, TokenBucketRateLimiter


def per_call(fn: Callable[[str], object], keys: list[str], calls: int) -> float:
    n = len(keys)
    start = time.perf_counter()
    for i in range(calls):
        fn(keys[i % n])
    return (time.perf_counter() - start) / calls


def overhead(calls: int) -> None:
    for label, nkeys in (("one hot key", 1), ("1,000 keys", 1000)):
        keys = [f"user:{i}" for i in range(nkeys)]
        limiter = TokenBucketRateLimiter(MemoryBackend(), 10**12, 1.0)
        per_call(limiter.is_allowed, keys, calls // 10)  # warm-up
        per_call(limiter.acquire, keys, calls // 10)
        base = min(per_call(limiter.is_allowed, keys, calls) for _ in range(3))
        acq = min(per_call(limiter.acquire, keys, calls) for _ in range(3))
        print(f"  {label:12s} is_allowed {base * 1e6:6.2f} us   acquire {acq * 1e6:6.2f} us"
              f"   ratio {acq / base:5.2f}x")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, late: list[float]) -> None:
    print(f"  {label:8s} median {statistics.median(late) * 1e3:6.3f} ms   "
          f"p99 {percentile(late, 0.99) * 1e3:6.3f} ms   (n={len(late)})")


def wake_error(samples: int, rate: int) -> None:
    limiter = GCRARateLimiter(MemoryBackend(), rate, 1.0, burst=1)
    limiter.acquire("k")
    late = []
    for _ in range(samples):
        start = time.monotonic()
        wait = limiter.peek("k").retry_after
        limiter.acquire("k")
        late.append(time.monotonic() - start - wait)
    report("threads", late)

    async def run() -> list[float]:
        alimiter = GCRARateLimiter(MemoryBackend(), rate, 1.0, burst=1)
        await alimiter.acquire_async("k")
        out = []
        for _ in range(samples):
            start = time.monotonic()
            wait = alimiter.peek("k").retry_after
            await alimiter.acquire_async("k")
            out.append(time.monotonic() - start - wait)
        return out

    report("asyncio", asyncio.run(run()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    calls = 20_000 if args.quick else 200_000
    samples = 100 if args.quick else 500
    print("acquire overhead when quota is available (memory store, token bucket):")
    overhead(calls)
    print("wake-up error: admitted this long after the computed retry_after "
          "(GCRA 200/s, one waiter, each wait ~5 ms):")
    wake_error(samples, 200)


if __name__ == "__main__":
    main()
