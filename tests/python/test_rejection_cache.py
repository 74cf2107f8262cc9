"""Rejections answered locally (RedisBackend / AsyncRedisBackend ``cache_rejections=True``),
against a real redis-server: how little reaches Redis for a hot over-limit key, that every
cached answer is one Redis would have given (exact admissions for every algorithm), reset
and configuration changes, the memory bound, and clocks that go backwards."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest
import redis
import redis.asyncio
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer

import ratelimiter
from ratelimiter import _core
from ratelimiter.backends import AsyncRedisBackend, RedisBackend
from ratelimiter.exceptions import ConfigurationError

REQUESTS = 10_000


# `server` and `client` are the shared fixtures of redis_server.py (via conftest.py).


class ClientRedis(redis.Redis):  # type: ignore[type-arg]
    """Not a plain redis.Redis: RedisBackend runs its scripts through the client object."""


def backend_for(path: str, port: int, **kwargs: Any) -> RedisBackend:
    client = redis.Redis(port=port) if path == "native" else ClientRedis(port=port)
    backend = RedisBackend(client, **kwargs)
    assert backend.is_native == (path == "native")
    return backend


def script_calls(client: Any) -> int:
    """Script runs Redis has served (EVALSHA, EVAL, FCALL), from INFO commandstats."""
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0)
               for name in ("evalsha", "eval", "fcall", "fcall_ro"))


@pytest.mark.parametrize("path", ["native", "client"])
def test_hot_over_limit_key_reaches_redis_at_most_5_percent(
        client: Any, server: RedisServer, path: str) -> None:
    backend = backend_for(path, server.port, cache_rejections=True)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 10, 3600)
    admitted = sum(limiter.is_allowed("hot").allowed for _ in range(REQUESTS))
    assert admitted == 10
    calls = script_calls(client)
    counters = backend.counters
    assert calls == REQUESTS - counters["cache_hits"]
    assert calls <= REQUESTS * 0.05, calls
    assert counters["rejections_cached"] >= 1 and counters["cache_entries"] == 1


def test_async_hot_over_limit_key_reaches_redis_at_most_5_percent(
        client: Any, server: RedisServer) -> None:
    async def run() -> tuple[int, list[Any], dict[str, int]]:
        backend = AsyncRedisBackend(redis.asyncio.Redis(port=server.port), cache_rejections=True)
        limiter = ratelimiter.FixedWindowRateLimiter(backend, 10, 3600)
        results = [await limiter.is_allowed_async("hot") for _ in range(REQUESTS)]
        await limiter.reset_async("hot")
        after_reset = await limiter.is_allowed_async("hot")
        await backend.close()
        return sum(r.allowed for r in results), [results[-1], after_reset], backend.counters

    admitted, (last, after_reset), counters = asyncio.run(run())
    assert admitted == 10
    assert last.metadata["cached"] is True and not last.allowed and last.retry_after > 0
    assert after_reset.allowed and "cached" not in after_reset.metadata
    calls = script_calls(client)
    assert calls == REQUESTS + 1 - counters["cache_hits"]
    assert calls <= REQUESTS * 0.05, calls


def _scripted_run(limiter: Any, clock: FakeClock, limit: int,
                  script: list[tuple[float, str, Any]]) -> list[Any]:
    """Runs `script` ((clock step, key, cost or "peek") per request); an empty script is
    first written: a fixed pseudo-random sequence on three keys of mixed costs (including
    above capacity) and peeks, with clock steps of zero, small, and exactly the latest
    rejection's retry_after (the instant a cached rejection must stop answering)."""
    rng = random.Random(15)
    writing = not script
    out: list[Any] = []
    last_retry = 0.0
    for i in range(1500):
        if writing:
            roll = rng.random()
            step = (last_retry if roll < 0.1 else
                    rng.choice([0.001, 0.05, 0.5, 3.0]) if roll < 0.3 else 0.0)
            what = "peek" if rng.random() < 0.05 else rng.choice([1, 1, 1, 1, 2, 3, limit + 1])
            script.append((step, rng.choice(["a", "a", "a", "b", "c"]), what))
        step, key, what = script[i]
        clock.advance(step)
        if what == "peek":
            out.append(("peek", limiter.peek(key)))
            continue
        result = limiter.is_allowed(key, what)
        if not result.allowed and what <= limit:
            last_retry = result.retry_after
        out.append((what, result))
    return out


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("path", ["native", "client"])
def test_admitted_requests_unchanged_by_the_cache(
        client: Any, server: RedisServer, cls: Any, path: str) -> None:
    """The same request sequence on a cached and an uncached backend: identical decisions
    (every cached answer is a rejection Redis gave too), retry_after never longer, remaining
    never more."""
    runs = []
    script: list[tuple[float, str, Any]] = []
    for prefix, cache in (("u:", False), ("c:", True)):
        clock = FakeClock(1_000.0)
        backend = backend_for(path, server.port, key_prefix=prefix, use_server_time=False,
                              cache_rejections=cache)
        limiter = make_exact(cls, backend, 5, 10.0, clock=clock)
        runs.append((_scripted_run(limiter, clock, 5, script), backend.counters))
    (plain, _), (cached, counters) = runs
    assert [(c, r.allowed) for c, r in cached] == [(c, r.allowed) for c, r in plain]
    hits = [(r, u) for (_, r), (_, u) in zip(cached, plain) if r.metadata.get("cached")]
    assert len(hits) == counters["cache_hits"]
    # Adaptive bypasses the cache: its retry_after may exceed the wait (rejection_cache.hpp).
    assert len(hits) > 100 if cls is not ratelimiter.AdaptiveRateLimiter else not hits
    for r, u in hits:
        assert not r.allowed and not u.allowed
        assert 0 < r.retry_after <= u.retry_after + 1e-6
        assert r.remaining <= u.remaining


def test_threads_sharing_a_cached_backend_admit_exactly_the_limit(
        client: Any, server: RedisServer) -> None:
    """Eight threads on hot and cold keys (the native store releases the GIL, so lookups,
    records and a reset race in the sharded cache): admissions exact, entries bounded."""
    backend = backend_for("native", server.port, cache_rejections=True,
                          rejection_cache_size=32)
    limiter = ratelimiter.SlidingWindowRateLimiter(backend, 50, 3600)
    admitted: dict[str, int] = {}
    lock = threading.Lock()

    def worker(t: int) -> None:
        mine: dict[str, int] = {}
        for i in range(2000):
            key = "hot" if i % 2 else f"cold{(t * 2000 + i) % 100}"
            if limiter.is_allowed(key).allowed:
                mine[key] = mine.get(key, 0) + 1
        with lock:
            for key, n in mine.items():
                admitted[key] = admitted.get(key, 0) + n

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert admitted["hot"] == 50
    # 50 cold keys (even i), each tried 160 times.
    assert {k: n for k, n in admitted.items() if k != "hot"} == {
        f"cold{i}": 50 for i in range(0, 100, 2)}
    counters = backend.counters
    assert counters["cache_entries"] <= 32 and counters["cache_hits"] > 0


def test_reset_in_this_process_takes_effect_at_once(client: Any, server: RedisServer) -> None:
    backend = backend_for("native", server.port, cache_rejections=True)
    limiter = ratelimiter.SlidingWindowRateLimiter(backend, 2, 3600)
    assert [limiter.is_allowed("k").allowed for _ in range(4)] == [True, True, False, False]
    assert backend.counters["cache_hits"] == 1
    limiter.reset("k")
    assert backend.counters["cache_entries"] == 0
    assert [limiter.is_allowed("k").allowed for _ in range(3)] == [True, True, False]


def test_another_process_reset_is_seen_after_at_most_retry_after(
        client: Any, server: RedisServer) -> None:
    """What the docs promise: a reset elsewhere is not seen here until the rejection this
    process was told expires (retry_after later), then Redis decides again."""
    clock = FakeClock(1_000.0)
    cached = ratelimiter.FixedWindowRateLimiter(
        backend_for("native", server.port, use_server_time=False, cache_rejections=True),
        1, 60, clock=clock)
    other = ratelimiter.FixedWindowRateLimiter(
        backend_for("native", server.port, use_server_time=False), 1, 60, clock=clock)
    assert cached.is_allowed("k").allowed
    rejected = cached.is_allowed("k")
    assert not rejected.allowed and rejected.retry_after == pytest.approx(20.0)  # 1000 % 60
    other.reset("k")
    clock.advance(19.9)
    assert cached.is_allowed("k").metadata.get("cached") is True
    clock.advance(0.1)  # the window Redis named has ended: Redis decides (a new window)
    assert cached.is_allowed("k").allowed


def test_other_parameters_and_config_updates_bypass_an_entry(
        client: Any, server: RedisServer) -> None:
    backend = backend_for("native", server.port, cache_rejections=True)
    config = ratelimiter.DynamicConfig(limit=2, window=3600)
    dynamic = ratelimiter.FixedWindowRateLimiter(backend, 2, 3600, config_provider=config)
    assert [dynamic.is_allowed("k").allowed for _ in range(3)] == [True, True, False]
    assert dynamic.is_allowed("k").metadata.get("cached") is True
    config.update(limit=5)  # Redis holds count 2: three more fit under the new limit
    assert [dynamic.is_allowed("k").allowed for _ in range(4)] == [True, True, True, False]
    wider = ratelimiter.FixedWindowRateLimiter(backend, 6, 3600)
    assert wider.is_allowed("k").allowed and "cached" not in wider.is_allowed("k").metadata


def test_smaller_costs_are_asked_larger_ones_answered(client: Any, server: RedisServer) -> None:
    clock = FakeClock(1_000.0)
    backend = backend_for("native", server.port, use_server_time=False, cache_rejections=True)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 10, 10, clock=clock)
    assert limiter.is_allowed("k", 8).allowed
    first = limiter.is_allowed("k", 5)  # 2 tokens left: cost 5 waits 3 s
    assert not first.allowed and first.retry_after == pytest.approx(3.0)
    assert limiter.is_allowed("k", 7).metadata.get("cached") is True
    assert limiter.is_allowed("k", 2).allowed  # below the cached cost: Redis admits it
    assert backend.counters["cache_hits"] == 1


def test_peeks_neither_populate_nor_read_the_cache(client: Any, server: RedisServer) -> None:
    backend = backend_for("native", server.port, cache_rejections=True)
    limiter = ratelimiter.GCRARateLimiter(backend, 1, 3600)
    assert limiter.is_allowed("k").allowed
    assert not limiter.peek("k").allowed
    assert backend.counters["rejections_cached"] == 0
    assert not limiter.is_allowed("k").allowed
    peeked = limiter.peek("k")
    assert not peeked.allowed and "cached" not in peeked.metadata
    assert backend.counters["cache_hits"] == 0


def test_batches_use_the_cache(client: Any, server: RedisServer) -> None:
    backend = backend_for("native", server.port, cache_rejections=True)
    limiter = ratelimiter.FixedWindowRateLimiter(backend, 1, 3600)
    first = limiter.is_allowed_many(["a", "b", "a"])
    assert [r.allowed for r in first] == [True, True, False]
    second = limiter.is_allowed_many(["a", "b", "c"])
    assert [r.allowed for r in second] == [False, False, True]
    assert [r.metadata.get("cached") for r in second] == [True, None, None]


def test_async_batches_use_the_cache(client: Any, server: RedisServer) -> None:
    async def run() -> tuple[list[Any], list[Any], dict[str, int]]:
        backend = AsyncRedisBackend(redis.asyncio.Redis(port=server.port), cache_rejections=True)
        limiter = ratelimiter.FixedWindowRateLimiter(backend, 1, 3600)
        first = await limiter.is_allowed_many_async(["a", "b", "a"])
        second = await limiter.is_allowed_many_async(["a", "b", "c"])
        await backend.close()
        return first, second, backend.counters

    first, second, counters = asyncio.run(run())
    assert [r.allowed for r in first] == [True, True, False]
    assert [r.allowed for r in second] == [False, False, True]
    assert [r.metadata.get("cached") for r in second] == [True, None, None]
    assert counters["cache_hits"] == 1 and script_calls(client) == 5


def test_multi_limit_decisions_bypass_the_cache(client: Any, server: RedisServer) -> None:
    backend = backend_for("native", server.port, cache_rejections=True)
    limiter = ratelimiter.MultiRateLimiter(backend, "3/hour;10/day")
    assert [limiter.is_allowed("k").allowed for _ in range(6)] == [True] * 3 + [False] * 3
    assert backend.counters["cache_hits"] == backend.counters["rejections_cached"] == 0


@pytest.mark.parametrize("path", ["native", "client"])
def test_the_cache_stays_within_its_bound(client: Any, server: RedisServer, path: str) -> None:
    backend = backend_for(path, server.port, cache_rejections=True, rejection_cache_size=100)
    limiter = ratelimiter.FixedWindowRateLimiter(backend, 1, 3600)
    for i in range(1000):
        key = f"k{i}"
        assert limiter.is_allowed(key).allowed
        assert not limiter.is_allowed(key).allowed
    counters = backend.counters
    assert counters["rejections_cached"] == 1000
    assert counters["cache_entries"] <= 100
    assert counters["cache_evictions"] == 1000 - counters["cache_entries"]
    assert counters["cache_entries"] >= 80  # most shards full (keys spread by hash)


def test_bad_arguments_name_the_parameter() -> None:
    for kwargs, word in [({"cache_rejections": "yes"}, "cache_rejections"),
                         ({"cache_rejections": True, "rejection_cache_size": 0},
                          "rejection_cache_size"),
                         ({"cache_rejections": True, "rejection_cache_size": 2.5},
                          "rejection_cache_size"),
                         ({"cache_rejections": True, "rejection_cache_size": True},
                          "rejection_cache_size")]:
        with pytest.raises(ConfigurationError, match=word):
            RedisBackend(redis.Redis(port=1), **kwargs)
        with pytest.raises(ConfigurationError, match=word):
            AsyncRedisBackend(redis.asyncio.Redis(port=1), **kwargs)
    with pytest.raises(ConfigurationError, match="rejection_cache_size"):
        _core.RejectionCache(0)
    assert "cache_hits" not in RedisBackend(redis.Redis(port=1)).counters  # off by default


# --- _core.RejectionCache on its own: explicit monotonic times, exact arithmetic -------------

# A token bucket call (cpp/lua/_common.lua): now, cost, op, reply format, capacity, rate.
def call(now: str = "", cost: int = 1, op: str = "consume", rate: str = "0.5") -> list[bytes]:
    return [now.encode(), str(cost).encode(), op.encode(), b"t", b"10", rate.encode()]


# allowed, insufficient_capacity, remaining, reset_after, retry_after, tokens, refill_rate
REJECTED = ["0", "0", "0", "19", "2", "0.5", "0.5"]
MARGIN = 1e-5 + 1e-9 * 10  # rejection_cache.hpp safety_margin: 10 us + kEps * max(p, 1/p)


def test_core_cache_server_time_counts_on_the_monotonic_clock() -> None:
    cache = _core.RejectionCache(10)
    cache.record("k", "token_bucket", call(), REJECTED, 100.0, cache.ticket("k"))
    hit = cache.lookup("k", "token_bucket", call(), 100.5)
    assert hit is not None and hit[-1] == "cached"
    assert float(hit[4]) == 1.5 and float(hit[3]) == 18.5  # retry_after, reset_after
    # Expires before Redis could admit: a margin of 1e-3 of the wait for clock-rate drift.
    expiry = 100.0 + 2.0 - MARGIN - 2e-3
    assert cache.lookup("k", "token_bucket", call(), expiry - 1e-6) is not None
    assert cache.lookup("k", "token_bucket", call(), expiry) is None
    assert len(cache) == 0  # an expired entry is dropped when met


def test_core_cache_client_clock_backwards_or_standing_still_never_extends() -> None:
    cache = _core.RejectionCache(10)
    cache.record("k", "token_bucket", call("1000"), REJECTED, 50.0, cache.ticket("k"))
    hit = cache.lookup("k", "token_bucket", call("1001.5"), 50.0)
    assert hit is not None and float(hit[4]) == pytest.approx(0.5)
    assert cache.lookup("k", "token_bucket", call("999"), 50.0) is None  # clock went back
    assert len(cache) == 0
    cache.record("k", "token_bucket", call("1000"), REJECTED, 50.0, cache.ticket("k"))
    # The caller's clock stands still, the monotonic one runs out the wait: ask Redis.
    assert cache.lookup("k", "token_bucket", call("1000"), 52.0) is None


def test_core_cache_matches_cost_parameters_and_operation() -> None:
    cache = _core.RejectionCache(10)
    cache.record("k", "token_bucket", call(cost=2), REJECTED, 0.0, cache.ticket("k"))
    assert cache.lookup("k", "token_bucket", call(cost=1), 0.0) is None
    assert cache.lookup("k", "token_bucket", call(cost=3), 0.0) is not None
    assert cache.lookup("k", "token_bucket", call(cost=2, rate="0.25"), 0.0) is None
    assert cache.lookup("k", "token_bucket", call(cost=2, op="peek"), 0.0) is None
    assert cache.lookup("other", "token_bucket", call(cost=2), 0.0) is None
    cache.record("p", "token_bucket", call(op="peek"), REJECTED, 0.0, cache.ticket("p"))
    insufficient = ["0", "1", "0", "0", "0", "0", "0.5"]
    cache.record("i", "token_bucket", call(cost=11), insufficient, 0.0, cache.ticket("i"))
    assert len(cache) == 1 and cache.counters["rejections_cached"] == 1


def test_core_cache_reset_while_a_reply_is_in_flight_is_not_undone() -> None:
    cache = _core.RejectionCache(10)
    ticket = cache.ticket("k")
    cache.invalidate("k")  # reset() between sending and the reply
    cache.record("k", "token_bucket", call(), REJECTED, 0.0, ticket)
    assert len(cache) == 0
    cache.record("k", "token_bucket", call(), REJECTED, 0.0, cache.ticket("k"))
    admitted = ["1", "0", "9", "2", "0", "9", "0.5"]  # admitted: a reset elsewhere
    cache.record("k", "token_bucket", call(), admitted, 0.0, cache.ticket("k"))
    assert len(cache) == 0
