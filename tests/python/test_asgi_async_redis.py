"""FastAPI on AsyncRedisBackend served by uvicorn (uvloop + httptools) in its own process:
exactly ``limit`` of 200 concurrent requests are admitted, the rest get a complete 429.

How responsive the server's event loop stays meanwhile is a timing figure, not a pass/fail
property (on a loaded 2-core machine the scheduler alone stalls a process for milliseconds):
``python bench/bench_asgi_async_redis.py`` measures it next to a baseline.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis_server import RedisServer

import ratelimiter

pytestmark = [pytest.mark.slow]

HERE = Path(__file__).parent


@pytest.fixture
def app_url() -> Iterator[str]:
    with RedisServer() as redis_server:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        package_root = str(Path(ratelimiter.__file__).parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "async_redis_app.py"), "--redis-url", redis_server.url,
             "--limit", "50"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("listening on "), line + proc.stdout.read()
            url = line.split("listening on ", 1)[1].strip()
            for _ in range(200):  # the socket is bound before the banner; wait for uvicorn
                try:
                    httpx.get(f"{url}/lag", timeout=1.0)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def _burst(url: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
        return await asyncio.gather(*(client.get("/work") for _ in range(n)))


def test_200_concurrent_requests_admit_exactly_limit(app_url: str) -> None:
    responses = asyncio.run(_burst(app_url, 200))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json() == {"error": "rate limit exceeded"}
    assert rejected.headers["X-RateLimit-Limit"] == "50"
    assert rejected.headers["X-RateLimit-Remaining"] == "0"
    assert int(rejected.headers["Retry-After"]) >= 1
