"""Async batches: ``await limiter.is_allowed_many_async(keys)`` and
``AsyncRateLimiter.is_allowed_many`` on a real redis-server and a real 3-master cluster —
one pipeline per batch (per node on a cluster), the same decisions as one call per key,
nothing decided when a key is bad, ``on_error`` and ``timeout`` applied to the batch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Callable, TypeVar

import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_cluster import RedisCluster
from redis_server import RedisServer

from ratelimiter import (
    AdaptiveRateLimiter,
    AsyncRateLimiter,
    MemoryBackend,
    MultiRateLimiter,
    SQLiteBackend,
    TokenBucketRateLimiter,
)
from ratelimiter.backends import AsyncRedisBackend
from ratelimiter.exceptions import BackendError

T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await factory()
    return asyncio.run(main())


def backend_on(port: int, **kwargs: Any) -> AsyncRedisBackend:
    kwargs.setdefault("use_server_time", False)
    return AsyncRedisBackend(redis.asyncio.Redis(host="127.0.0.1", port=port), **kwargs)


def reads(client: Any) -> int:
    """Socket reads the server has processed (INFO stats): one per round trip or less."""
    return int(client.info("stats")["total_reads_processed"])


def evalsha_calls(client: Any) -> int:
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_a_batch_decides_as_one_call_per_key(server: RedisServer, client: Any,
                                             cls: type) -> None:
    clock = FakeClock()
    keys = ["x", "y", "x", "z", "x", "x", "y"]

    async def go() -> list[tuple[list[Any], list[Any]]]:
        batched = make_exact(cls, backend_on(server.port, key_prefix="a:"), 3, 60.0,
                             clock=clock)
        single = make_exact(cls, backend_on(server.port, key_prefix="b:"), 3, 60.0,
                            clock=clock)
        rounds = []
        for _ in range(3):
            got = await batched.is_allowed_many_async(keys)
            want = [await single.is_allowed_async(k) for k in keys]
            rounds.append((got, want))
            clock.advance(7.0)
        return rounds

    rounds = run(go)
    for got, want in rounds:
        assert got == want
    # Exact: x is asked 4 times with a limit of 3 at one instant.
    assert [r.allowed for r in rounds[0][0]] == [True, True, True, True, True, False, True]


def test_adaptive_whole_service_load_batch_decides_as_one_call_per_key(
        server: RedisServer, client: Any) -> None:
    clock = FakeClock()
    keys = [f"k{i % 5}" for i in range(40)]

    async def go() -> tuple[list[bool], list[bool]]:
        def make(prefix: str) -> Any:
            return AdaptiveRateLimiter(backend_on(server.port, key_prefix=prefix), 4, 1.0,
                                       load_capacity=10.0, clock=clock)
        got = await make("a:").is_allowed_many_async(keys)
        single = make("b:")
        want = [await single.is_allowed_async(k) for k in keys]
        return [r.allowed for r in got], [r.allowed for r in want]

    got, want = run(go)
    assert got == want


def test_a_batch_is_one_round_trip(server: RedisServer, client: Any) -> None:
    keys = [f"k{i}" for i in range(200)]

    async def go() -> tuple[int, int, int, list[bool]]:
        limiter = TokenBucketRateLimiter(backend_on(server.port), 2, 60.0, clock=FakeClock())
        await limiter.is_allowed_many_async(keys[:3])  # connect, load the script
        before, calls = reads(client), evalsha_calls(client)
        results = await limiter.is_allowed_many_async(keys)
        batch_reads, batch_calls = reads(client) - before, evalsha_calls(client) - calls
        before = reads(client)
        for key in keys:
            await limiter.is_allowed_async(key)
        return batch_reads, batch_calls, reads(client) - before, [r.allowed for r in results]

    batch_reads, batch_calls, single_reads, allowed = run(go)
    assert batch_calls == 200
    # 200 commands in one write, read by the server in one or a few reads (+1 for the INFO
    # that measures it); one call per key is one read per key.
    assert batch_reads <= 4
    assert single_reads >= 200
    assert allowed == [True] * 200


def test_noscript_inside_a_batch_is_recovered(server: RedisServer, client: Any) -> None:
    async def go() -> tuple[list[bool], list[bool]]:
        limiter = TokenBucketRateLimiter(backend_on(server.port), 2, 60.0, clock=FakeClock())
        first = await limiter.is_allowed_many_async(["a", "b", "c"])
        client.script_flush()
        second = await limiter.is_allowed_many_async(["a", "b", "c"] * 2)
        return [r.allowed for r in first], [r.allowed for r in second]

    assert run(go) == ([True] * 3, [True] * 3 + [False] * 3)


@pytest.mark.parametrize("bad", [["a", 5, "b"], ["a", "x" * 2000], "abc", ["a", b"b"]],
                         ids=["not-a-str", "too-long", "one-str", "bytes"])
def test_a_bad_key_decides_nothing(server: RedisServer, client: Any, bad: Any) -> None:
    async def go() -> None:
        limiter = TokenBucketRateLimiter(backend_on(server.port), 2, 60.0)
        multi = MultiRateLimiter(backend_on(server.port), "2/second;5/minute", "gcra")
        for target in (limiter, multi, AsyncRateLimiter(limiter)):
            many = getattr(target, "is_allowed_many_async", None) or target.is_allowed_many
            with pytest.raises((TypeError, ValueError)):
                await many(bad)
        with pytest.raises(ValueError, match="cost"):
            await limiter.is_allowed_many_async(["a", "b"], cost=0)

    run(go)
    assert client.dbsize() == 0
    assert evalsha_calls(client) == 0


def test_an_empty_batch_is_no_call(server: RedisServer, client: Any) -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        limiter = TokenBucketRateLimiter(backend_on(server.port), 2, 60.0)
        multi = MultiRateLimiter(backend_on(server.port), "2/second", "gcra")
        return await limiter.is_allowed_many_async([]), await multi.is_allowed_many_async([])

    assert run(go) == ([], [])
    assert evalsha_calls(client) == 0


def test_multi_limiter_batch_decides_as_one_call_per_key(server: RedisServer,
                                                         client: Any) -> None:
    clock = FakeClock()
    keys = ["x", "y", "x", "x", "y", "x"]

    async def go() -> tuple[list[Any], list[Any], int, int]:
        batched = MultiRateLimiter(backend_on(server.port), "2/second;3/minute", "gcra",
                                   clock=clock, key_prefix="a:")
        single = MultiRateLimiter(backend_on(server.port), "2/second;3/minute", "gcra",
                                  clock=clock, key_prefix="b:")
        await batched.is_allowed_many_async(["w"])  # load the script
        before = reads(client)
        got = await batched.is_allowed_many_async(keys)
        batch_reads = reads(client) - before
        want = [await single.is_allowed_async(k) for k in keys]
        return got, want, batch_reads, len(got)

    got, want, batch_reads, n = run(go)
    assert [(r.allowed, r.remaining) for r in got] == [(r.allowed, r.remaining) for r in want]
    assert [r.allowed for r in got] == [True, True, True, False, True, False]
    assert batch_reads <= 3 and n == 6


@pytest.mark.parametrize("on_error", ["raise", "allow", "deny"])
def test_redis_down_answers_the_batch_by_on_error(on_error: str) -> None:
    with RedisServer() as down:
        backend = backend_on(down.port, on_error=on_error, timeout=0.5)
        limiter = make_exact(ALL_LIMITERS[0], backend, 5, 60.0)

        async def go() -> Any:
            assert all(r.allowed for r in await limiter.is_allowed_many_async(["a", "b"]))
            down.kill()
            if on_error == "raise":
                with pytest.raises(BackendError):  # refused, or timed out retrying
                    await limiter.is_allowed_many_async(["a", "b", "c"])
                return None
            return await limiter.is_allowed_many_async(["a", "b", "c"])

        results = run(go)
    if on_error == "raise":
        assert backend.counters["errors"] == 3
        return
    assert [r.allowed for r in results] == [on_error == "allow"] * 3
    assert all(r.metadata["on_error"] == on_error for r in results)
    counter = "fallback_allowed" if on_error == "allow" else "fallback_denied"
    assert backend.counters[counter] == 3
    assert backend.counters["errors"] == 3


@pytest.mark.parametrize("on_error", ["raise", "deny"])
def test_a_hung_redis_costs_the_batch_one_timeout(server: RedisServer, client: Any,
                                                  on_error: str) -> None:
    backend = backend_on(server.port, on_error=on_error, timeout=0.2)
    limiter = TokenBucketRateLimiter(backend, 2, 60.0)

    async def go() -> Any:
        await limiter.is_allowed_many_async(["warm"])
        client.execute_command("CLIENT", "PAUSE", 3000, "ALL")  # a stopped server
        try:
            if on_error == "raise":
                with pytest.raises(BackendError, match="timed out"):
                    await limiter.is_allowed_many_async(["a", "b", "c", "d"])
                return None
            return await limiter.is_allowed_many_async(["a", "b", "c", "d"])
        finally:
            client.execute_command("CLIENT", "UNPAUSE")

    results = run(go)
    assert backend.counters["errors"] == 4
    if on_error == "deny":
        assert [r.metadata["on_error"] for r in results] == ["deny"] * 4


@pytest.mark.parametrize("on_error", ["raise", "allow"])
def test_a_failing_key_costs_only_its_own_decision(server: RedisServer, client: Any,
                                                   on_error: str) -> None:
    backend = backend_on(server.port, on_error=on_error)
    limiter = TokenBucketRateLimiter(backend, 2, 60.0, clock=FakeClock())
    client.rpush(backend.storage_key("bad", "token_bucket"), "not a bucket")  # WRONGTYPE

    async def go() -> Any:
        if on_error == "raise":
            with pytest.raises(BackendError, match="WRONGTYPE"):
                await limiter.is_allowed_many_async(["a", "bad", "b"])
            return await limiter.is_allowed_many_async(["a", "b"])
        return await limiter.is_allowed_many_async(["a", "bad", "b"])

    results = run(go)
    assert backend.counters["errors"] == 1
    if on_error == "raise":
        # a and b were decided by the failed batch all the same: this is their 2nd request.
        assert [(r.allowed, r.remaining) for r in results] == [(True, 0), (True, 0)]
    else:
        assert [r.allowed for r in results] == [True] * 3
        assert "on_error" in results[1].metadata and "on_error" not in results[0].metadata


def test_async_rate_limiter_batches_on_every_store(server: RedisServer, client: Any,
                                                   tmp_path: Any) -> None:
    clock = FakeClock()
    keys = ["a", "b", "a", "a", "c", "a"]
    want = [True, True, True, True, True, False]  # a 4 times, limit 3

    async def go() -> list[list[bool]]:
        out = []
        for backend in (MemoryBackend(), SQLiteBackend(str(tmp_path / "rl.db")),
                        backend_on(server.port)):
            limiter = AsyncRateLimiter(TokenBucketRateLimiter(backend, 3, 60.0, clock=clock))
            out.append([r.allowed for r in await limiter.is_allowed_many(iter(keys))])
        return out

    assert run(go) == [want] * 3


# --- cluster ------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_cluster_batch_is_exact_and_one_round_trip_per_master(cluster: RedisCluster,
                                                              cls: type) -> None:
    keys = [f"user:{i}" for i in range(1000)]
    masters = cluster.masters()
    nodes = {port: cluster.node(port) for port in masters}
    for node in nodes.values():
        node.flushall()
        node.config_resetstat()

    async def go() -> tuple[list[list[bool]], dict[int, int]]:
        aclient = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster.ports[0])
        backend = AsyncRedisBackend(aclient, use_server_time=False, timeout=30.0)
        limiter = make_exact(cls, backend, 2, 60.0, clock=FakeClock())
        await limiter.is_allowed_many_async(keys)  # learn the slots, load the scripts
        before = {port: reads(node) for port, node in nodes.items()}
        second = await limiter.is_allowed_many_async(keys)
        spent = {port: reads(node) - before[port] for port, node in nodes.items()}
        third = await limiter.is_allowed_many_async(keys)
        await aclient.aclose()
        return [[r.allowed for r in second], [r.allowed for r in third]], spent

    try:
        (second, third), spent = run(go)
        assert second == [True] * 1000 and third == [False] * 1000
        calls = {port: evalsha_calls(node) for port, node in nodes.items()}
        assert sum(calls.values()) >= 3000 - 3 * 3  # NOSCRIPT may cost a master its first
        assert all(count > 200 for count in calls.values()), calls  # every master decides
        # ~333 keys a master, in one pipeline: a few reads (+1 for the INFO), not hundreds.
        assert all(count <= 6 for count in spent.values()), spent
    finally:
        for node in nodes.values():
            node.close()
