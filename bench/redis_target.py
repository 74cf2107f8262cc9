"""Where a Redis benchmark runs: the user's Redis (--url) or a private redis-server."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Optional

# The tests' server helper starts redis-server on a free loopback port.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))


@contextmanager
def redis_url(url: Optional[str]) -> Iterator[str]:
    """Yield ``url`` when given, else the URL of a redis-server started for this run."""
    if url:
        yield url
        return
    from redis_server import RedisServer

    with RedisServer() as server:
        yield server.url


def batch_bench_options(doc: str) -> argparse.Namespace:
    """The batch benchmarks' command line: --seconds per measurement, --batch size, and
    --cluster to measure a local 3-master cluster too."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--cluster", action="store_true")
    return parser.parse_args()
