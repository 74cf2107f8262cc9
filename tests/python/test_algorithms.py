"""Each algorithm through Python, driven by a fake clock and by patching time.time."""

from __future__ import annotations

import math
from unittest.mock import patch

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact

import ratelimiter
from ratelimiter import MemoryBackend


def admitted(limiter: ratelimiter.BaseAlgorithm, key: str, n: int, cost: int = 1) -> int:
    return sum(limiter.is_allowed(key, cost).allowed for _ in range(n))


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_limit_at_one_instant_then_retry_after_admits(cls: type, clock: FakeClock) -> None:
    limiter = make_exact(cls, MemoryBackend(), 5, 10.0, clock=clock)
    assert admitted(limiter, "k", 20) == 5
    rejected = limiter.is_allowed("k")
    assert not rejected.allowed
    assert rejected.remaining == 0
    assert 0 < rejected.retry_after <= 2 * 10.0  # sliding counter: up to two windows
    clock.advance(rejected.retry_after)
    assert limiter.is_allowed("k").allowed


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_patched_time_time_drives_default_clock(cls: type) -> None:
    limiter = make_exact(cls, MemoryBackend(), 3, 60.0)
    with patch("time.time", return_value=5_000.0):
        assert admitted(limiter, "u", 10) == 3
    with patch("time.time", return_value=5_000.0 + 120.0):
        assert limiter.is_allowed("u").allowed


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_rejected_requests_do_not_consume(cls: type, clock: FakeClock) -> None:
    limiter = make_exact(cls, MemoryBackend(), 4, 10.0, clock=clock)
    assert admitted(limiter, "k", 4) == 4
    before = limiter._impl.state("k")
    assert admitted(limiter, "k", 50) == 0
    assert limiter._impl.state("k") == before


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_cost_above_capacity_is_rejected_forever_without_consuming(cls: type,
                                                                    clock: FakeClock) -> None:
    limiter = make_exact(cls, MemoryBackend(), 5, 10.0, clock=clock)
    result = limiter.is_allowed("k", cost=6)
    assert not result.allowed
    assert result.retry_after == math.inf
    assert result.metadata["insufficient_capacity"] is True
    assert "Retry-After" not in result.headers
    assert admitted(limiter, "k", 5) == 5


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_peek_does_not_consume(cls: type, clock: FakeClock) -> None:
    limiter = make_exact(cls, MemoryBackend(), 2, 10.0, clock=clock)
    for _ in range(5):
        assert limiter.peek("k").allowed
    assert admitted(limiter, "k", 5) == 2
    peeked = limiter.peek("k")
    assert not peeked.allowed and peeked.remaining == 0


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_reset_restores_full_quota(cls: type, clock: FakeClock) -> None:
    limiter = make_exact(cls, MemoryBackend(), 3, 10.0, clock=clock)
    assert admitted(limiter, "k", 5) == 3
    limiter.reset("k")
    assert admitted(limiter, "k", 5) == 3


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_keys_and_prefixes_are_independent(cls: type, clock: FakeClock) -> None:
    backend = MemoryBackend()
    a = make_exact(cls, backend, 2, 10.0, clock=clock, key_prefix="a:")
    b = make_exact(cls, backend, 2, 10.0, clock=clock, key_prefix="b:")
    assert admitted(a, "k", 5) == 2
    assert admitted(a, "other", 5) == 2
    assert admitted(b, "k", 5) == 2
    assert a.is_allowed("k").key == "k"


def test_fixed_window_boundary_burst_and_window_start(clock: FakeClock) -> None:
    clock.now = 99.5
    limiter = ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    assert admitted(limiter, "k", 10) == 10
    result = limiter.is_allowed("k")
    assert result.metadata == {"window_start": 90.0, "count": 10}
    assert result.retry_after == pytest.approx(0.5)
    clock.now = 100.0
    assert admitted(limiter, "k", 15) == 10  # 2x limit within one second: the known weakness


def test_fixed_window_sub_second_windows_are_distinct(clock: FakeClock) -> None:
    clock.now = 0.0
    limiter = ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 1, 0.1, clock=clock)
    allowed = []
    for i in range(10):
        clock.now = i * 0.1 + 0.05
        allowed.append(limiter.is_allowed("k").allowed)
        allowed.append(limiter.is_allowed("k").allowed)
    assert allowed == [True, False] * 10


def test_sliding_window_log_never_exceeds_limit_in_any_window(clock: FakeClock) -> None:
    clock.now = 0.0
    limiter = ratelimiter.SlidingWindowRateLimiter(MemoryBackend(), 5, 1.0, clock=clock)
    times = []
    for i in range(400):
        clock.now = i * 0.037
        if limiter.is_allowed("k").allowed:
            times.append(clock.now)
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 1.0) <= 5
    assert len(times) >= 5 * int(400 * 0.037) - 5


def test_token_bucket_refill_arithmetic(clock: FakeClock) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    assert admitted(limiter, "k", 10) == 10
    clock.advance(2.5)  # 1 token/s
    result = limiter.is_allowed("k")
    assert result.allowed and result.remaining == 1
    assert result.metadata == {"tokens": pytest.approx(1.5), "refill_rate": 1.0}
    assert limiter.is_allowed("k").allowed
    rejected = limiter.is_allowed("k")
    assert not rejected.allowed and rejected.retry_after == pytest.approx(0.5)


def test_token_bucket_explicit_refill_rate(clock: FakeClock) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 4, 60.0, 2.0, clock=clock)
    assert admitted(limiter, "k", 4) == 4
    clock.advance(1.0)
    assert admitted(limiter, "k", 4) == 2


def test_leaky_bucket_leak_arithmetic(clock: FakeClock) -> None:
    limiter = ratelimiter.LeakyBucketRateLimiter(MemoryBackend(), 4, 4.0, clock=clock)
    assert admitted(limiter, "k", 4) == 4
    clock.advance(1.5)  # leaks 1.5
    result = limiter.is_allowed("k")
    assert result.allowed
    assert result.metadata == {"level": pytest.approx(3.5), "leak_rate": 1.0}
    rejected = limiter.is_allowed("k")
    assert rejected.retry_after == pytest.approx(0.5)


def test_sliding_window_counter_weights_previous_window(clock: FakeClock) -> None:
    clock.now = 100.0
    limiter = ratelimiter.SlidingWindowCounterRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    assert admitted(limiter, "k", 10) == 10
    clock.now = 112.5  # previous window weighs 0.75 → 7.5 effective
    assert admitted(limiter, "k", 5) == 2
    meta = limiter.peek("k").metadata
    assert meta["prev_count"] == 10 and meta["curr_count"] == 2
    assert meta["weight_prev"] == pytest.approx(0.75)


def test_gcra_matches_token_bucket_of_same_rate_and_burst(clock: FakeClock) -> None:
    import random

    rng = random.Random(7)
    tb = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 6, 3.0, clock=clock)
    gcra = ratelimiter.GCRARateLimiter(MemoryBackend(), 6, 3.0, clock=clock)
    for _ in range(2_000):
        clock.advance(rng.choice([0.0, 0.0, 0.1, 0.25, 0.5, 1.3]))
        cost = rng.choice([1, 1, 1, 2, 3])
        assert tb.is_allowed("k", cost).allowed == gcra.is_allowed("k", cost).allowed


def test_adaptive_quiet_key_bursts_then_guard_rejects(clock: FakeClock) -> None:
    limiter = ratelimiter.AdaptiveRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    assert admitted(limiter, "k", 20) == 20
    result = limiter.is_allowed("k")
    assert not result.allowed
    assert result.metadata["layer"] == "sliding_window"
    assert result.metadata["effective_burst"] == 20


def test_adaptive_hot_tenant_loses_burst_quiet_tenant_keeps_it(clock: FakeClock) -> None:
    limiter = ratelimiter.AdaptiveRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    for _ in range(200):  # a sustained stream at twice the 1/s rate
        limiter.is_allowed("hot")
        clock.advance(0.5)
    assert limiter.peek("hot").metadata["effective_burst"] == 10  # 2 * 10 * (1 - 0.5)
    assert limiter.peek("quiet").metadata["effective_burst"] == 20


def test_adaptive_aggregate_mode_uses_service_load(clock: FakeClock) -> None:
    limiter = ratelimiter.AdaptiveRateLimiter(MemoryBackend(), 10, 10.0, clock=clock,
                                              load_capacity=1.0)
    for i in range(100):  # 100 distinct users, one request each: 2 req/s for the service
        limiter.is_allowed(f"user{i}")
        clock.advance(0.5)
    meta = limiter.peek("newcomer").metadata
    assert meta["load"] >= 0.8
    assert meta["effective_burst"] == 10


def test_metadata_keys_per_algorithm(clock: FakeClock) -> None:
    expected = {
        ratelimiter.FixedWindowRateLimiter: {"window_start", "count"},
        ratelimiter.SlidingWindowRateLimiter: {"current_count"},
        ratelimiter.SlidingWindowCounterRateLimiter: {"curr_count", "prev_count",
                                                      "effective_count", "weight_prev"},
        ratelimiter.TokenBucketRateLimiter: {"tokens", "refill_rate"},
        ratelimiter.LeakyBucketRateLimiter: {"level", "leak_rate"},
        ratelimiter.AdaptiveRateLimiter: {"layer", "tokens", "effective_burst", "refill_rate",
                                          "sw_count", "load"},
        ratelimiter.GCRARateLimiter: {"tat"},
    }
    for cls, keys in expected.items():
        assert set(cls(MemoryBackend(), 5, 1.0, clock=clock).is_allowed("k").metadata) == keys


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_waiting_retry_after_admits_at_epoch_scale_times(cls: type) -> None:
    """At real time.time() magnitudes one ulp is ~2.4e-7 s; retry_after still suffices."""
    import random

    rng = random.Random(3)
    clock = FakeClock(1_763_900_000.123)
    limiter = make_exact(cls, MemoryBackend(), 7, 0.7, clock=clock)
    checked = 0
    for _ in range(3_000):
        clock.advance(rng.choice([0.0, 0.0, 0.01, 0.05, 0.2]))
        cost = rng.choice([1, 1, 2, 3])
        result = limiter.is_allowed("k", cost)
        if not result.allowed and result.retry_after < 10:
            clock.advance(result.retry_after)
            assert limiter.is_allowed("k", cost).allowed
            checked += 1
    assert checked > 100
