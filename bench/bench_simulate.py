"""Simulator speed: 1,000,000 requests through the seven algorithms, and a 1M-line trace.

The figure that matters is the ratio against a baseline measured in the same run: a
plain-Python loop that drives a dict-based token bucket over the same timestamps (the
least a pure-Python simulator would do per request, with no figures collected). Both are
timed in wall and CPU seconds; on a shared machine CPU seconds are the steadier figure.
Figures only: nothing here asserts a timing.

    python bench/bench_simulate.py [--requests 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Callable

from ratelimiter.simulate import ALGORITHMS, CsvTrace, make_pattern
from ratelimiter.simulate.engine import run_source


def plain_python_bucket_loop(times: list[float], limit: int, window: float) -> int:
    """The baseline: a careful pure-Python token bucket per request, counting admits."""
    capacity = float(limit)
    rate = limit / window
    buckets: dict[str, list[float]] = {}
    admitted = 0
    for now in times:
        bucket = buckets.get("client")
        if bucket is None:
            bucket = buckets["client"] = [capacity, now]
        tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            admitted += 1
        else:
            bucket[0] = tokens
    return admitted


def timed(func: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description="simulator benchmark")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 requests")
    args = parser.parse_args()
    n = 100_000 if args.quick else args.requests
    limit, window = 10, 1.0
    names = list(ALGORITHMS)

    pattern = make_pattern("steady", limit, window, n)
    times = [t for chunk in pattern.chunks() for t in chunk.times]
    base_wall, base_cpu = timed(
        lambda: [plain_python_bucket_loop(times, limit, window) for _ in names]
    )
    print(f"{n:,} requests x {len(names)} algorithms = {n * len(names):,} decisions\n")
    print(f"{'':<44}{'wall s':>8}{'CPU s':>8}{'vs plain py':>13}")
    print(f"{'plain-Python dict token bucket loop (x7)':<44}{base_wall:>8.2f}{base_cpu:>8.2f}")
    for name in ("steady", "bursts", "boundary", "ramp"):
        source = make_pattern(name, limit, window, n)
        wall, cpu = timed(lambda s=source: run_source(s, names, limit, window))
        print(f"{'simulate --pattern ' + name:<44}{wall:>8.2f}{cpu:>8.2f}{base_cpu / cpu:>12.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.csv")
        with open(path, "w") as f:
            f.writelines(f"{i / 15:.6f},u{i % 100},1\n" for i in range(n))
        wall, cpu = timed(lambda: run_source(CsvTrace(path), names, limit, window))
        print(
            f"{'--trace (' + format(n, ',') + ' lines, 100 keys, costs)':<44}{wall:>8.2f}"
            f"{cpu:>8.2f}{base_cpu / cpu:>12.2f}x"
        )
    print(
        "\nvs plain py: the plain loop's CPU time over the simulator's; above 1 means the"
        "\nsimulator, which also collects the table and chart figures, is the faster."
    )


if __name__ == "__main__":
    main()
