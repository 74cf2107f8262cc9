"""FastAPI on AsyncRedisBackend served by uvicorn in its own process: exact admissions under
200 concurrent requests, with the server's event loop staying responsive meanwhile."""

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

HERE = Path(__file__).parent


# On a 2-core machine the client, the server and redis-server preempt each other for
# several ms at a time, which a wall-clock probe would report as event-loop lag. Giving the
# server its own core makes the probe measure the server's loop, not the scheduler.
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = CPUS[0] if len(CPUS) >= 2 else None
OTHER_CPUS = set(CPUS[1:]) if len(CPUS) >= 2 else set(CPUS)


@pytest.fixture
def app_url() -> Iterator[str]:
    with RedisServer() as redis_server:
        assert redis_server.process is not None
        os.sched_setaffinity(redis_server.process.pid, OTHER_CPUS)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        package_root = str(Path(ratelimiter.__file__).parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "async_redis_app.py"), "--redis-url", redis_server.url,
             "--limit", "50"] + ([] if SERVER_CPU is None else ["--cpu", str(SERVER_CPU)]),
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
        # Warm-up on another tenant: opens the Redis pool's connections and runs every code
        # path once, so the probe then sees the steady state rather than start-up costs.
        warm = {"X-Tenant": "warm-up"}
        await asyncio.gather(*(client.get("/work", headers=warm) for _ in range(n)))
        await client.post("/lag/reset")
        return await asyncio.gather(*(client.get("/work") for _ in range(n)))


def test_200_concurrent_requests_admit_exactly_limit_without_blocking_the_loop(
    app_url: str,
) -> None:
    own_cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, OTHER_CPUS)
    try:
        responses = asyncio.run(_burst(app_url, 200))
    finally:
        os.sched_setaffinity(0, own_cpus)
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json() == {"error": "rate limit exceeded"}
    assert rejected.headers["X-RateLimit-Limit"] == "50"
    assert rejected.headers["X-RateLimit-Remaining"] == "0"
    assert int(rejected.headers["Retry-After"]) >= 1
    worst_ms = httpx.get(f"{app_url}/lag").json()["worst_ms"]
    assert worst_ms < 5.0, f"event loop stalled for {worst_ms:.2f} ms"
