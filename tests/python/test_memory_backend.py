"""MemoryBackend: bounded, expiring, and the BaseBackend primitives."""

from __future__ import annotations

import pytest
from conftest import ALL_LIMITERS, FakeClock

import ratelimiter
from ratelimiter import ConfigurationError, MemoryBackend


def test_max_keys_is_never_exceeded_and_evictions_counted(clock: FakeClock) -> None:
    backend = MemoryBackend(max_keys=1_000)
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 5, 60.0, clock=clock)
    for i in range(10_000):
        limiter.is_allowed(f"user{i}")
        assert len(backend) <= 1_000
    assert len(backend) == 1_000
    assert backend.evictions == 9_000


def test_bound_spans_algorithms(clock: FakeClock) -> None:
    backend = MemoryBackend(max_keys=100)
    for cls in ALL_LIMITERS:
        limiter = cls(backend, 5, 60.0, clock=clock)
        for i in range(300):
            limiter.is_allowed(f"k{i}")
            assert len(backend) <= 100


def test_idle_keys_expire_once_fresh(clock: FakeClock) -> None:
    backend = MemoryBackend()
    for cls in ALL_LIMITERS:
        limiter = cls(backend, 5, 10.0, clock=clock)
        for i in range(50):
            limiter.is_allowed(f"k{i}")
    assert len(backend) == 7 * 50
    assert backend.purge_expired(clock.now + 1.0) == 0  # buckets refill 1 token in 2 s
    assert backend.purge_expired(clock.now + 2.0) == 3 * 50  # token, leaky bucket, GCRA
    # Every algorithm's state is fresh again at most two windows (adaptive: its sensor
    # window, 5 windows, plus one) after the last request.
    assert backend.purge_expired(clock.now + 200.0) == 4 * 50
    assert len(backend) == 0


def test_expired_keys_are_swept_as_the_store_grows(clock: FakeClock) -> None:
    backend = MemoryBackend()
    limiter = ratelimiter.FixedWindowRateLimiter(backend, 5, 1.0, clock=clock)
    for round_ in range(20):
        for i in range(5_000):
            limiter.is_allowed(f"r{round_}:{i}")
        clock.advance(2.0)
    # Without sweeping there would be 100,000 keys; sweeps keep it near one round's worth.
    assert len(backend) < 20_000


def test_rejected_first_request_stores_nothing(clock: FakeClock) -> None:
    backend = MemoryBackend()
    limiter = ratelimiter.TokenBucketRateLimiter(backend, 5, 10.0, clock=clock)
    assert not limiter.is_allowed("k", 6).allowed
    assert len(backend) == 0


def test_max_keys_validation() -> None:
    with pytest.raises(ConfigurationError):
        MemoryBackend(max_keys=-1)
    with pytest.raises(TypeError):
        MemoryBackend(max_keys=1.5)  # type: ignore[arg-type]
