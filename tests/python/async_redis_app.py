"""A FastAPI app behind AsyncRateLimitMiddleware on AsyncRedisBackend, with an event-loop
lag probe; run in its own process by test_asgi_async_redis.py (admissions) and
bench/bench_asgi_async_redis.py (lag):

    python tests/python/async_redis_app.py --redis-url redis://127.0.0.1:PORT/0 --limit 50

Prints ``listening on <url>`` once serving. ``GET /work`` is rate limited (one Redis script
per request); ``GET /free`` is the same handler, exempt (no Redis: the bench's baseline).
``GET /lag`` returns the worst and 99th-percentile delay (ms) seen by a ticker task that
sleeps 1 ms at a time on the server's event loop since the last ``POST /lag/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio
import uvicorn
from fastapi import FastAPI

from ratelimiter import AsyncRateLimiter, AsyncRedisBackend, TokenBucketRateLimiter
from ratelimiter.middleware import AsyncRateLimitMiddleware


class LagProbe:
    """Measures how late a 1 ms sleep wakes up: the event loop's responsiveness."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            if len(self.lags) < 1_000_000:
                self.lags.append(time.perf_counter() - start - 0.001)

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lags) or [0.0]
        return {"worst_ms": 1000 * lags[-1],
                "p99_ms": 1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))],
                "samples": float(len(self.lags))}


def build_app(redis_url: str, limit: int) -> FastAPI:
    probe = LagProbe()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(probe.run())
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan)
    # A blocking pool: past max_connections requests wait for a connection instead of
    # failing with "Too many connections" (redis-py's default pool refuses).
    pool = redis.asyncio.BlockingConnectionPool.from_url(redis_url, max_connections=32)
    client = redis.asyncio.Redis(connection_pool=pool)
    limiter = AsyncRateLimiter(
        TokenBucketRateLimiter(AsyncRedisBackend(client, timeout=5.0), limit=limit,
                               window=3600.0)
    )

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/free")
    async def free() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/lag")
    async def lag() -> dict[str, float]:
        return probe.summary()

    @app.post("/lag/reset")
    async def reset() -> dict[str, float]:
        probe.lags = []
        return probe.summary()

    def tenant_key(scope: Any) -> str:
        # One shared key per tenant header, so a warm-up burst leaves the measured key fresh.
        for name, value in scope["headers"]:
            if name == b"x-tenant":
                return "tenant:" + value.decode("latin-1")
        return "tenant:default"

    app.add_middleware(
        AsyncRateLimitMiddleware,
        limiter=limiter,
        key_func=tenant_key,
        exempt_paths=["/free", "/lag", "/lag/reset"],
    )
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # uvloop + httptools: the production setup (uvicorn[standard]).
    config = uvicorn.Config(build_app(args.redis_url, args.limit), log_level="warning",
                            access_log=False, loop="uvloop", http="httptools")
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
