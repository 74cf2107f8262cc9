"""MultiRateLimiter: several limits, all or nothing, on every store; adjust; bad input.

Every test runs on the memory store, a SQLite file, a real redis-server (client clock, so
the fake clock drives it) and a user's BaseBackend (conftest.DictBackend), with a FakeClock:
exact numbers, no sleeps.
"""

from __future__ import annotations

import asyncio
import math
import pickle
from typing import Any, Callable

import pytest
import redis
from conftest import DictBackend, FakeClock
from redis_server import RedisServer

import ratelimiter
from ratelimiter import (
    ConfigurationError,
    MemoryBackend,
    MultiRateLimiter,
    RedisBackend,
    SQLiteBackend,
    TokenBucketRateLimiter,
)
from ratelimiter.backends.async_redis_backend import AsyncRedisBackend

ALGORITHMS = ["fixed_window", "sliding_window", "sliding_window_counter", "token_bucket",
              "leaky_bucket", "gcra"]
STORES = ["memory", "sqlite", "redis", "custom"]


@pytest.fixture
def make_backend(server: RedisServer, tmp_path: Any) -> Callable[[str], Any]:
    client = server.client()
    client.flushall()

    def make(store: str) -> Any:
        if store == "memory":
            return MemoryBackend()
        if store == "sqlite":
            return SQLiteBackend(str(tmp_path / "multi.db"))
        if store == "redis":
            return RedisBackend(redis.Redis(port=server.port), use_server_time=False)
        return DictBackend()

    return make


def limits_of(result: Any) -> list[tuple[int, bool, int]]:
    """(limit, allowed, remaining) of every limit in a result."""
    return [(e["limit"], e["allowed"], e["remaining"]) for e in result.metadata["limits"]]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tighter_limit_decides_and_rejections_consume_nothing(
        make_backend: Callable[[str], Any], clock: FakeClock, store: str, algorithm: str) -> None:
    limiter = MultiRateLimiter(make_backend(store), "5/second;20/minute", algorithm,
                               clock=clock)
    admitted = [limiter.is_allowed("k").allowed for _ in range(12)]
    assert admitted == [True] * 5 + [False] * 7
    # The minute limit was charged for the 5 admitted requests only.
    assert limits_of(limiter.peek("k")) == [(5, False, 0), (20, True, 15)]
    rejected = limiter.is_allowed("k")
    assert (rejected.limit, rejected.remaining, rejected.window) == (5, 0, 1.0)
    assert 0 < rejected.retry_after <= 2 and "Retry-After" in rejected.headers


@pytest.mark.parametrize("store", STORES)
def test_result_numbers_and_ietf_headers(make_backend: Callable[[str], Any], clock: FakeClock,
                                         store: str) -> None:
    limiter = MultiRateLimiter(make_backend(store),
                               {"requests": "2/second;10/minute", "tokens": "100/minute"},
                               "fixed_window", clock=clock)
    first = limiter.is_allowed("org", {"requests": 1, "tokens": 60})
    assert first.allowed and (first.limit, first.remaining) == (2, 1)  # smallest remaining
    second = limiter.is_allowed("org", {"requests": 1, "tokens": 60})
    assert not second.allowed
    assert second.retry_after == pytest.approx(20.0)  # the token limit's window ends at 1020
    assert [(e["dimension"], e["allowed"], e["remaining"])
            for e in second.metadata["limits"]] == [
        ("requests", True, 1), ("requests", True, 9), ("tokens", False, 40)]
    assert second.ietf_headers == {
        "RateLimit-Policy": '"requests:2/second";q=2;w=1, "requests:10/minute";q=10;w=60, '
                            '"tokens:100/minute";q=100;w=60',
        "RateLimit": '"requests:2/second";r=1;t=1, "requests:10/minute";r=9;t=20, '
                     '"tokens:100/minute";r=40;t=20',
        "Retry-After": "20",
    }
    assert pickle.loads(pickle.dumps(second)) == second


@pytest.mark.parametrize("store", STORES)
def test_cost_above_a_capacity_is_insufficient_and_charges_nothing(
        make_backend: Callable[[str], Any], clock: FakeClock, store: str) -> None:
    limiter = MultiRateLimiter(make_backend(store), {"requests": "10/minute",
                                                     "tokens": "100/minute"}, clock=clock)
    result = limiter.is_allowed("k", {"requests": 1, "tokens": 101})
    assert not result.allowed and math.isinf(result.retry_after)
    assert result.metadata["insufficient_capacity"] is True
    assert "Retry-After" not in result.headers
    assert limits_of(limiter.peek("k")) == [(10, True, 10), (100, True, 100)]


@pytest.mark.parametrize("store", STORES)
def test_a_dimension_not_named_costs_nothing(make_backend: Callable[[str], Any],
                                             clock: FakeClock, store: str) -> None:
    limiter = MultiRateLimiter(make_backend(store), {"requests": "3/minute",
                                                     "tokens": "50/minute"}, clock=clock)
    assert limiter.is_allowed("k", {"tokens": 50}).allowed
    # The exhausted token limit is not consulted by a request that costs it nothing.
    assert limiter.is_allowed("k", {"requests": 1}).allowed
    assert limits_of(limiter.peek("k")) == [(3, True, 2), (50, False, 0)]
    assert limiter.is_allowed("k", 1).allowed is False  # an int costs every limit


@pytest.mark.parametrize("store", STORES)
def test_bad_input_is_refused_without_state_change(make_backend: Callable[[str], Any],
                                                   clock: FakeClock, store: str) -> None:
    limiter = MultiRateLimiter(make_backend(store), {"requests": "5/minute"}, clock=clock)
    limiter.is_allowed("k")
    before = limits_of(limiter.peek("k"))
    with pytest.raises(ConfigurationError, match="unknown dimension 'tokens'"):
        limiter.is_allowed("k", {"requests": 1, "tokens": 5})
    with pytest.raises(ConfigurationError, match="only adjust"):
        limiter.is_allowed("k", {"requests": -1})
    with pytest.raises(ConfigurationError, match="cost must be a positive int"):
        limiter.is_allowed("k", -1)
    with pytest.raises(ConfigurationError, match="cost must be an int or a dict"):
        limiter.is_allowed("k", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cost must be an int"):
        limiter.is_allowed("k", True)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown dimension"):
        limiter.adjust("k", {"nope": 1})
    assert limits_of(limiter.peek("k")) == before


def test_bad_limits_and_algorithms() -> None:
    backend = MemoryBackend()
    with pytest.raises(ConfigurationError, match="fortnight"):
        MultiRateLimiter(backend, "10/fortnight")
    with pytest.raises(ConfigurationError, match="cannot run several limits"):
        MultiRateLimiter(backend, "10/second", "adaptive_hybrid")
    with pytest.raises(TypeError, match="algorithm must be"):
        MultiRateLimiter(backend, "10/second", 3)
    with pytest.raises(TypeError, match="dimension names"):
        MultiRateLimiter(backend, {"": "10/second"})
    with pytest.raises(ConfigurationError, match="no dimension"):
        MultiRateLimiter(backend, {})
    with pytest.raises(TypeError, match="key_prefix"):
        MultiRateLimiter(backend, "10/second", key_prefix=3)  # type: ignore[arg-type]


def test_duplicates_merge_and_conflicting_limits_are_all_enforced(clock: FakeClock) -> None:
    limiter = MultiRateLimiter(MemoryBackend(), "10/second;10/1 second;5/second", clock=clock)
    assert [str(limit) for limit in limiter.limits] == ["10/second", "5/second"]
    assert sum(limiter.is_allowed("k").allowed for _ in range(12)) == 5
    named = MultiRateLimiter(MemoryBackend(), {"a": "10/second", "b": "10/second"})
    assert len(named.limits) == 2  # the same limit in two dimensions is two limits


def test_algorithm_by_class_and_one_limit_like_the_plain_limiter(clock: FakeClock) -> None:
    multi = MultiRateLimiter(MemoryBackend(), "4/10 seconds", TokenBucketRateLimiter,
                             clock=clock)
    plain = TokenBucketRateLimiter(MemoryBackend(), 4, 10, clock=clock)
    assert multi.algorithm == "token_bucket"
    for step in range(12):
        clock.advance(0.7 * (step % 3))
        a, b = multi.is_allowed("k", 1 + step % 2), plain.is_allowed("k", 1 + step % 2)
        assert (a.allowed, a.remaining, a.reset_after, a.retry_after) == (
            b.allowed, b.remaining, b.reset_after, b.retry_after)


def test_changing_a_limit_does_not_reuse_another_limits_state(clock: FakeClock) -> None:
    backend = MemoryBackend()
    MultiRateLimiter(backend, "5/second", clock=clock).is_allowed("k", 5)
    assert MultiRateLimiter(backend, "6/second", clock=clock).peek("k").remaining == 6
    assert MultiRateLimiter(backend, "5/second", clock=clock).peek("k").remaining == 0


@pytest.mark.parametrize("store", STORES)
def test_reset_forgets_every_limit(make_backend: Callable[[str], Any], clock: FakeClock,
                                   store: str) -> None:
    limiter = MultiRateLimiter(make_backend(store), "1/second;2/minute", clock=clock)
    assert limiter.is_allowed("k").allowed and not limiter.is_allowed("k").allowed
    limiter.reset("k")
    assert limits_of(limiter.peek("k")) == [(1, True, 1), (2, True, 2)]
    assert [r.allowed for r in limiter.is_allowed_many(["a", "b", "a"])] == [True, True, False]


# Golden numbers for adjust, one limit of 10 per 10 s at t = 1000: consume 4, charge 3,
# charge 10 (windowed algorithms carry it whole; the buckets go 7 units into debt: tokens
# -7, level 17), then the retry_after of a cost-1 request (buckets: (1 + 7) / 1 s, the debt
# repaid), then refund 100 (back to a full quota, never beyond).
ADJUST_GOLDEN = {
    "fixed_window": (6, 3, 0, 10.0, 10),
    "sliding_window": (6, 3, 0, 10.0, 10),
    "sliding_window_counter": (6, 3, 0, 10.0 + 10.0 * (1 - 9 / 17), 10),
    "token_bucket": (6, 3, 0, 8.0, 10),
    "leaky_bucket": (6, 3, 0, 8.0, 10),
    "gcra": (6, 3, 0, 8.0, 10),
}
BUCKETS = ["token_bucket", "leaky_bucket", "gcra"]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_adjust_golden(make_backend: Callable[[str], Any], clock: FakeClock, store: str,
                       algorithm: str) -> None:
    limiter = MultiRateLimiter(make_backend(store), "10/10 seconds", algorithm, clock=clock)
    after_consume, after_charge, after_debt, retry, after_refund = ADJUST_GOLDEN[algorithm]
    assert limiter.is_allowed("k", 4).remaining == after_consume
    assert limiter.adjust("k", 3).remaining == after_charge
    assert limiter.adjust("k", 10).remaining == after_debt
    rejected = limiter.is_allowed("k")
    assert not rejected.allowed
    assert rejected.retry_after == pytest.approx(retry, abs=1e-9)
    assert limiter.adjust("k", -100).remaining == after_refund
    assert limiter.is_allowed("k", 10).allowed


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("algorithm", BUCKETS)
def test_bucket_debt_is_waited_out_exactly_and_bounded(
        make_backend: Callable[[str], Any], clock: FakeClock, store: str,
        algorithm: str) -> None:
    """A charge takes a bucket into debt (at most one whole bucket); later requests wait
    exactly until it is repaid. 10 per 10 s: 1 unit per second."""
    limiter = MultiRateLimiter(make_backend(store), "10/10 seconds", algorithm, clock=clock)
    assert limiter.is_allowed("k", 4).remaining == 6
    charged = limiter.adjust("k", 13)  # 6 left, 7 in debt
    assert (charged.allowed, charged.remaining) == (False, 0)
    assert charged.reset_after == pytest.approx(17.0, abs=1e-9)
    rejected = limiter.is_allowed("k")
    assert not rejected.allowed
    assert rejected.retry_after == pytest.approx(8.0, abs=1e-9)
    clock.advance(7.5)
    assert limiter.is_allowed("k").retry_after == pytest.approx(0.5, abs=1e-9)
    clock.advance(rejected.retry_after - 7.5)  # exactly the wait first announced
    admitted = limiter.is_allowed("k")
    assert (admitted.allowed, admitted.remaining) == (True, 0)
    # A charge beyond one bucket of debt is clamped to it: 20 s to full, 11 s for one unit.
    clamped = limiter.adjust("k", 100)
    assert clamped.reset_after == pytest.approx(20.0, abs=1e-9)
    assert clamped.metadata["limits"][0]["retry_after"] == pytest.approx(11.0, abs=1e-9)
    clock.advance(19.5)
    assert not limiter.is_allowed("k", 10).allowed
    clock.advance(0.5)
    assert limiter.is_allowed("k", 10).allowed
    # A refund while in debt repays it first, and never exceeds a full bucket.
    limiter.adjust("k", 5)  # 5 in debt
    assert limiter.adjust("k", -12).remaining == 7
    assert limiter.adjust("k", -100).remaining == 10


@pytest.mark.parametrize("store", STORES)
def test_adaptive_limits_all_or_nothing_and_adjust_golden(
        make_backend: Callable[[str], Any], clock: FakeClock, store: str) -> None:
    """The adaptive limiter in its per-key load mode (burst_multiplier 2, as by default)."""
    backend = make_backend(store)
    limiter = MultiRateLimiter(backend, "5/second;20/minute", "adaptive", clock=clock)
    plain = ratelimiter.AdaptiveRateLimiter(MemoryBackend(), 5, 1, clock=clock)
    admitted = [limiter.is_allowed("k").allowed for _ in range(25)]
    assert admitted == [plain.is_allowed("k").allowed for _ in range(25)]
    assert sum(admitted) == 10  # a burst of 2 x 5
    # The minute limit (burst 40) was charged for the 10 admitted requests only.
    assert limits_of(limiter.peek("k")) == [(5, False, 0), (20, True, 30)]

    # adjust, 10 per 10 s (max burst 20, 1 unit/s, load sensor over 50 s) at t = 1000: the
    # guard and the sensor carry a charge whole, the bucket is at most emptied.
    one = MultiRateLimiter(backend, "10/10 seconds", "adaptive", clock=clock)
    assert one.is_allowed("j", 4).remaining == 16
    assert one.adjust("j", 3).remaining == 13
    assert one.adjust("j", 10).remaining == 3
    assert one.adjust("j", 20).remaining == 0  # guard 37, tokens 0
    rejected = one.is_allowed("j")
    # Load 37/50 = 0.74 → effective burst floor(20·(1 − 0.5·0.34/0.4)) = 11; the guard's 37
    # must decay to 10 in the next window: 10 + 10·(1 − 10/37) s.
    assert (rejected.allowed, rejected.metadata["effective_burst"]) == (False, 11)
    assert rejected.retry_after == pytest.approx(10.0 + 10.0 * (1 - 10 / 37), abs=1e-9)
    clock.advance(rejected.retry_after)
    assert one.is_allowed("j").allowed
    assert one.adjust("j", -100).remaining == 20  # back to a full quota, never beyond
    assert one.is_allowed("j", 20).allowed


@pytest.mark.parametrize("store", STORES)
def test_adjust_tokens_after_the_fact(make_backend: Callable[[str], Any], clock: FakeClock,
                                      store: str) -> None:
    """The LLM pattern: estimate, then charge/refund by the real usage."""
    limiter = MultiRateLimiter(make_backend(store),
                               {"requests": "60/minute", "tokens": "1000/minute"},
                               "sliding_window_counter", clock=clock)
    assert limiter.is_allowed("org", {"requests": 1, "tokens": 500}).allowed
    limiter.adjust("org", {"tokens": 700 - 500})  # used more than estimated
    assert limits_of(limiter.peek("org")) == [(60, True, 59), (1000, True, 300)]
    assert not limiter.is_allowed("org", {"requests": 1, "tokens": 400}).allowed
    limiter.adjust("org", {"tokens": -300})  # a failed call is not counted
    assert limiter.is_allowed("org", {"requests": 1, "tokens": 400}).allowed
    assert limits_of(limiter.peek("org")) == [(60, True, 58), (1000, True, 200)]


def test_one_evalsha_per_decision_whatever_the_number_of_limits(
        server: RedisServer, clock: FakeClock) -> None:
    client = server.client()
    limiter = MultiRateLimiter(RedisBackend(redis.Redis(port=server.port),
                                            use_server_time=False),
                               {"requests": "5/second;100/minute", "tokens": "1000/minute"},
                               "sliding_window", clock=clock)
    limiter.is_allowed("warm")
    client.config_resetstat()
    for i in range(30):
        limiter.is_allowed(f"u{i % 3}", {"requests": 1, "tokens": 40})
    limiter.adjust("u1", {"tokens": -10})
    limiter.peek("u2")
    assert client.info("commandstats")["cmdstat_evalsha"]["calls"] == 32
    keys = sorted(k.decode() for k in client.keys("rl:{u0}*"))
    assert keys == ["rl:{u0}:sliding_window:requests:100/60",
                    "rl:{u0}:sliding_window:requests:5/1",
                    "rl:{u0}:sliding_window:tokens:1000/60"]
    assert all(client.pttl(k) > 0 for k in keys)


def test_client_path_runs_the_same_multi_scripts(server: RedisServer, clock: FakeClock) -> None:
    class Wrapped(redis.Redis):  # any non-plain client goes through the client object
        pass

    native = MultiRateLimiter(RedisBackend(redis.Redis(port=server.port),
                                           use_server_time=False), "3/second;5/minute",
                              clock=clock, key_prefix="n:")
    wrapped = MultiRateLimiter(RedisBackend(Wrapped(port=server.port, decode_responses=True),
                                            use_server_time=False), "3/second;5/minute",
                               clock=clock, key_prefix="w:")
    for _ in range(3):
        clock.advance(0.4)
        a, b = native.is_allowed("k", 2), wrapped.is_allowed("k", 2)
        assert (a.allowed, a.remaining, a.retry_after) == (b.allowed, b.remaining, b.retry_after)
        assert a.metadata == b.metadata
    assert native.adjust("k", -1).metadata == wrapped.adjust("k", -1).metadata


def test_async_paths(server: RedisServer, clock: FakeClock) -> None:
    import redis.asyncio as aredis

    async def run() -> None:
        for backend in (MemoryBackend(), AsyncRedisBackend(aredis.Redis(port=server.port),
                                                           use_server_time=False)):
            limiter = MultiRateLimiter(backend, "2/second;3/minute", "gcra", clock=clock,
                                       key_prefix="async:")
            await limiter.reset_async("k")
            results = [(await limiter.is_allowed_async("k")).allowed for _ in range(3)]
            assert results == [True, True, False]
            assert limits_of(await limiter.peek_async("k")) == [(2, False, 0), (3, True, 1)]
            assert limits_of(await limiter.adjust_async("k", -2)) == [(2, True, 2),
                                                                       (3, True, 3)]
            async_wrapped = ratelimiter.AsyncRateLimiter(limiter)
            assert (await async_wrapped.is_allowed("k")).allowed
            # Adaptive through the same async script path (bursts of 2 x 2 and 2 x 3).
            adaptive = MultiRateLimiter(backend, "2/second;3/minute", "adaptive", clock=clock,
                                        key_prefix="async-adaptive:")
            await adaptive.reset_async("k")
            results = [(await adaptive.is_allowed_async("k")).allowed for _ in range(5)]
            assert results == [True] * 4 + [False]
            assert limits_of(await adaptive.peek_async("k")) == [(2, False, 0), (3, True, 2)]
            assert limits_of(await adaptive.adjust_async("k", -2)) == [(2, True, 2),
                                                                        (3, True, 4)]

    asyncio.run(run())


@pytest.mark.parametrize("on_error", ["allow", "deny"])
def test_redis_down_answers_by_on_error(clock: FakeClock, on_error: str) -> None:
    from redis_server import _free_port

    backend = RedisBackend(url=f"redis://127.0.0.1:{_free_port()}/0", on_error=on_error,
                           timeout=0.2, use_server_time=False)
    limiter = MultiRateLimiter(backend, "5/second;20/minute", clock=clock)
    result = limiter.is_allowed("k")
    assert result.allowed is (on_error == "allow")
    assert result.metadata["on_error"] == on_error
    assert backend.counters["errors"] == 1


def test_keys_must_be_a_sequence_of_str(clock: FakeClock) -> None:
    limiter = MultiRateLimiter(MemoryBackend(), "5/second", clock=clock)
    with pytest.raises(TypeError, match="not a single str"):
        limiter.is_allowed_many("user42")
    with pytest.raises(TypeError, match="key must be a str"):
        limiter.is_allowed_many(["a", 3])  # type: ignore[list-item]
    assert limiter.peek("a").remaining == 5  # a bad batch decides nothing
