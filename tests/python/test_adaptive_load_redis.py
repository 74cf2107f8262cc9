"""The adaptive limiter's aggregate load (``load_capacity=...``) on a real redis-server.

With ``load_capacity`` the load is not the key's own sensor but the limiter's admitted rate
over all keys, measured in the process (cpp/bindings/aggregate_load.hpp) and handed to the
Lua script as a step input. The scripted trace makes that input decide: a crowd of distinct
keys, one request each, loads the service, so a newcomer's burst shrinks from 2*limit to
limit; its own (empty) sensor would have given it the full burst. Each Redis front end must
decide exactly as the memory store does, result for result, on the same fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Union

import pytest
import redis
import redis.asyncio
from conftest import FakeClock
from redis_server import RedisServer

from ratelimiter import AdaptiveRateLimiter, AsyncRedisBackend, MemoryBackend, RedisBackend
from ratelimiter.algorithms.base import RateLimitResult

LIMIT, WINDOW = 10, 10.0  # refill 1/s; the adaptive window defaults to 5 * window = 50 s
START = 1_712_345_678.125  # epoch-scale, as time.time() reads

# (seconds to advance, key or keys, cost, op): op "take" is is_allowed, "peek" is peek,
# "many" is is_allowed_many / is_allowed_many_async (one key at a time under an aggregate
# load: each decision moves the load the next one reads).
Step = tuple[float, Union[str, list[str]], int, str]


def _trace(peeks: bool = True) -> list[Step]:
    return [step for step in _full_trace() if peeks or step[3] != "peek"]


def _full_trace() -> list[Step]:
    steps: list[Step] = [(0.0, "newcomer-0", 1, "peek")]  # an idle service: the full burst
    # 60 distinct keys, one request every 0.5 s: 2 admissions/s against a capacity of 1/s.
    steps += [(0.5, f"user{i}", 1, "take") for i in range(60)]
    steps.append((0.0, "newcomer", 1, "peek"))
    steps += [(0.0, "newcomer", 1, "take")] * 14  # the shrunken burst, then rejections
    steps += [(0.0, "big", 7, "take"), (0.0, "big", 7, "take")]  # costs against the burst
    steps.append((0.0, [f"batch{i}" for i in range(4)], 2, "many"))
    steps.append((-3.0, "newcomer", 1, "take"))  # a clock step back
    steps += [(1.0, "newcomer", 1, "take")] * 3  # refilled, but the guard still rejects
    steps.append((30.0, "late", 1, "peek"))  # 30 s on, the crowd still weighs in the load
    steps += [(0.0, "late", 1, "take")] * 16
    steps.append((120.0, "idle", 1, "peek"))  # two load windows on: no load at all
    return steps


def _view(result: RateLimitResult) -> tuple[Any, ...]:
    meta = result.metadata
    return (result.key, result.allowed, result.remaining, result.retry_after,
            result.reset_after, meta["layer"], meta["load"], meta["effective_burst"])


def _replay(limiter: AdaptiveRateLimiter, clock: FakeClock,
            peeks: bool = True) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for dt, key, cost, op in _trace(peeks):
        clock.advance(dt)
        if op == "many":
            assert isinstance(key, list)
            out += [_view(r) for r in limiter.is_allowed_many(key, cost)]
        elif op == "peek":
            assert isinstance(key, str)
            out.append(_view(limiter.peek(key)))
        else:
            assert isinstance(key, str)
            out.append(_view(limiter.is_allowed(key, cost)))
    return out


async def _replay_async(limiter: AdaptiveRateLimiter, clock: FakeClock,
                        peeks: bool) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for dt, key, cost, op in _trace(peeks):
        clock.advance(dt)
        if op == "many":
            assert isinstance(key, list)
            out += [_view(r) for r in await limiter.is_allowed_many_async(key, cost)]
        elif op == "peek":
            assert isinstance(key, str)
            out.append(_view(await limiter.peek_async(key)))
        else:
            assert isinstance(key, str)
            out.append(_view(await limiter.is_allowed_async(key, cost)))
    return out


def _limiter(backend: Any, clock: FakeClock, **kwargs: Any) -> AdaptiveRateLimiter:
    return AdaptiveRateLimiter(backend, LIMIT, WINDOW, clock=clock, **kwargs)


def _on_memory(peeks: bool = True, **kwargs: Any) -> list[tuple[Any, ...]]:
    clock = FakeClock(START)
    return _replay(_limiter(MemoryBackend(), clock, **kwargs), clock, peeks)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


def test_the_trace_turns_on_the_aggregate_load() -> None:
    """The reference itself: the figures that only the aggregate load gives."""
    aggregate = _on_memory(load_capacity=1.0)
    own_sensor = _on_memory()
    by_key: dict[str, list[tuple[Any, ...]]] = {}
    for row in aggregate:
        by_key.setdefault(row[0], []).append(row)
    assert by_key["newcomer-0"][0][6:] == (0.0, 2 * LIMIT)  # idle: load 0, burst 20
    peek = by_key["newcomer"][0]
    # 60 admissions at START+0.5..30; the aligned 50 s windows turn at START+21.875, so 43
    # are in the previous window (weight 1 - 8.125/50) and 17 in the current one; per second,
    # over a capacity of 1/s:
    assert peek[6] == pytest.approx((17 + 43 * (1 - 8.125 / 50)) / 50, abs=1e-12)
    assert peek[7] == LIMIT  # loaded: the burst is the limit
    admitted = [row[1] for row in by_key["newcomer"][1:15]]
    assert admitted == [True] * LIMIT + [False] * 4
    assert [row[1] for row in by_key["big"]] == [True, False]  # 7 of 10, then 7 > 3 left
    assert by_key["idle"][0][6:] == (0.0, 2 * LIMIT)
    # Without load_capacity every newcomer has the full burst: 14 of 14 admitted.
    own = [row for row in own_sensor if row[0] == "newcomer"]
    assert [row[1] for row in own[1:15]] == [True] * 14
    assert aggregate != own_sensor


def test_redis_backend_decides_like_memory(server: RedisServer) -> None:
    client = redis.Redis(port=server.port)
    client.flushdb()
    clock = FakeClock(START)
    limiter = _limiter(RedisBackend(client, use_server_time=False), clock, load_capacity=1.0)
    assert _replay(limiter, clock) == _on_memory(load_capacity=1.0)
    client.close()


def _async_replay(server: RedisServer, peeks: bool) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        client = redis.asyncio.Redis(port=server.port)
        await client.flushdb()
        clock = FakeClock(START)
        limiter = _limiter(AsyncRedisBackend(client, use_server_time=False), clock,
                           load_capacity=1.0)
        try:
            return await _replay_async(limiter, clock, peeks)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_async_redis_backend_decides_like_memory(server: RedisServer) -> None:
    assert _async_replay(server, peeks=False) == _on_memory(peeks=False, load_capacity=1.0)


def test_async_redis_peeks_do_not_load_the_service(server: RedisServer) -> None:
    assert _async_replay(server, peeks=True) == _on_memory(load_capacity=1.0)
