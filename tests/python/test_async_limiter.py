"""The limiters' *_async methods on every kind of backend, and on_error metadata."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer

import ratelimiter
from ratelimiter import (
    AsyncRedisBackend,
    ConfigurationError,
    MemoryBackend,
    RedisBackend,
    SQLiteBackend,
)


async def _admitted(limiter: ratelimiter.BaseAlgorithm, n: int) -> int:
    results = [await limiter.is_allowed_async("k") for _ in range(n)]  # type: ignore[attr-defined]
    return sum(r.allowed for r in results)


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_async_methods_on_memory_and_sqlite(cls: type, tmp_path: Path,
                                            clock: FakeClock) -> None:
    for backend in (MemoryBackend(), SQLiteBackend(str(tmp_path / f"{cls.__name__}.db"))):
        limiter = make_exact(cls, backend, 3, 10.0, clock=clock)
        assert asyncio.run(_admitted(limiter, 5)) == 3
        assert not asyncio.run(limiter.peek_async("k")).allowed
        asyncio.run(limiter.reset_async("k"))
        assert asyncio.run(_admitted(limiter, 5)) == 3


@pytest.fixture(scope="module")
def server() -> RedisServer:
    with RedisServer() as s:
        yield s


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_async_redis_backend_matches_memory(cls: type, server: RedisServer,
                                            clock: FakeClock) -> None:
    async def run() -> None:
        client = redis.asyncio.Redis(port=server.port)
        backend = AsyncRedisBackend(client, key_prefix=f"t:{cls.__name__}:",
                                    use_server_time=False)
        remote = make_exact(cls, backend, 4, 10.0, clock=clock)
        local = make_exact(cls, MemoryBackend(), 4, 10.0, clock=clock)
        for step in range(30):
            clock.advance(0.7 if step % 3 else 0.0)
            assert await remote.is_allowed_async("k", 1 + step % 2) == local.is_allowed(
                "k", 1 + step % 2)
        assert await remote.peek_async("k") == local.peek("k")
        await remote.reset_async("k")
        local.reset("k")
        assert await remote.is_allowed_async("k") == local.is_allowed("k")
        with pytest.raises(ConfigurationError, match="asynchronous"):
            remote.is_allowed("k")
        await client.aclose()

    asyncio.run(run())


def test_on_error_decisions_are_marked_in_metadata() -> None:
    with RedisServer() as down:
        port = down.port
    # Nothing listens on `port` any more.
    for policy, allowed in (("allow", True), ("deny", False)):
        backend = RedisBackend(url=f"redis://127.0.0.1:{port}/0", on_error=policy)
        result = ratelimiter.TokenBucketRateLimiter(backend, 5, 10.0).is_allowed("k")
        assert result.allowed is allowed
        assert result.metadata["on_error"] == policy
