"""Bad input gets a clear exception naming the parameter, changes no state, never crashes."""

from __future__ import annotations

import math

import pytest
from conftest import ALL_LIMITERS, FakeClock

import ratelimiter
from ratelimiter import ConfigurationError, MemoryBackend
from ratelimiter.exceptions import ConfigurationTypeError

BAD_COSTS = [0, -1, -(2**70), 2**70, 1.0, 1.5, math.nan, math.inf, True, False, None, "1", b"1"]
BAD_KEYS = [None, 1, 1.0, b"bytes", ["k"], "", "x" * 1025, "é" * 600, "\ud800"]


@pytest.mark.parametrize("cls", ALL_LIMITERS)
@pytest.mark.parametrize("cost", BAD_COSTS, ids=repr)
def test_bad_cost_raises_and_changes_nothing(cls: type, cost: object, clock: FakeClock) -> None:
    limiter = cls(MemoryBackend(), 3, 10.0, clock=clock)
    limiter.is_allowed("k")
    before = limiter._impl.state("k")
    with pytest.raises(ConfigurationError, match="cost"):
        limiter.is_allowed("k", cost)
    assert limiter._impl.state("k") == before


@pytest.mark.parametrize("cls", ALL_LIMITERS)
@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_bad_key_raises(cls: type, key: object, clock: FakeClock) -> None:
    limiter = cls(MemoryBackend(), 3, 10.0, clock=clock)
    for call in (limiter.is_allowed, limiter.peek, limiter.reset):
        with pytest.raises(ConfigurationError, match="key") as info:
            call(key)
        assert not isinstance(info.value, UnicodeError)  # a lone surrogate names the key


def test_key_limit_counts_the_prefix(clock: FakeClock) -> None:
    limiter = ratelimiter.GCRARateLimiter(MemoryBackend(), 3, 1.0, clock=clock, key_prefix="p" * 24)
    assert limiter.is_allowed("x" * 1000).allowed
    with pytest.raises(ConfigurationError, match="too long"):
        limiter.is_allowed("x" * 1001)
    with pytest.raises(ConfigurationError):
        limiter.is_allowed("x" * 10_240)


def test_type_errors_are_also_type_errors(clock: FakeClock) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 3, 1.0, clock=clock)
    with pytest.raises(TypeError):
        limiter.is_allowed(123)
    with pytest.raises(ConfigurationTypeError):
        limiter.is_allowed("k", 1.0)


BAD_LIMITS = [0, -5, True, 1.5, math.nan, "10", None, 2**80]
BAD_WINDOWS = [0, -1.0, math.nan, math.inf, True, "60", None]


@pytest.mark.parametrize("cls", ALL_LIMITERS)
@pytest.mark.parametrize("limit", BAD_LIMITS, ids=repr)
def test_bad_limit(cls: type, limit: object) -> None:
    with pytest.raises(ValueError, match="limit"):
        cls(MemoryBackend(), limit, 10.0)


@pytest.mark.parametrize("cls", ALL_LIMITERS)
@pytest.mark.parametrize("window", BAD_WINDOWS, ids=repr)
def test_bad_window(cls: type, window: object) -> None:
    with pytest.raises(ValueError, match="window"):
        cls(MemoryBackend(), 10, window)


@pytest.mark.parametrize(
    ("cls", "kwargs", "name"),
    [
        (ratelimiter.TokenBucketRateLimiter, {"refill_rate": 0}, "refill_rate"),
        (ratelimiter.TokenBucketRateLimiter, {"refill_rate": math.nan}, "refill_rate"),
        (ratelimiter.LeakyBucketRateLimiter, {"leak_rate": -1.0}, "leak_rate"),
        (ratelimiter.LeakyBucketRateLimiter, {"leak_rate": math.inf}, "leak_rate"),
        (ratelimiter.GCRARateLimiter, {"burst": 0}, "burst"),
        (ratelimiter.GCRARateLimiter, {"burst": 2.5}, "burst"),
        (ratelimiter.AdaptiveRateLimiter, {"burst_multiplier": 0}, "burst_multiplier"),
        (ratelimiter.AdaptiveRateLimiter, {"burst_multiplier": math.nan}, "burst_multiplier"),
        (ratelimiter.AdaptiveRateLimiter, {"adaptive_window": -1}, "adaptive_window"),
        (ratelimiter.AdaptiveRateLimiter, {"high_load_threshold": 1.5}, "high_load_threshold"),
        (ratelimiter.AdaptiveRateLimiter, {"low_load_threshold": -0.1}, "low_load_threshold"),
        (ratelimiter.AdaptiveRateLimiter,
         {"low_load_threshold": 0.9, "high_load_threshold": 0.5}, "low_load_threshold"),
        (ratelimiter.AdaptiveRateLimiter, {"penalty": 1.0}, "penalty"),
        (ratelimiter.AdaptiveRateLimiter, {"penalty": -0.5}, "penalty"),
        (ratelimiter.AdaptiveRateLimiter, {"load_capacity": 0}, "load_capacity"),
    ],
)
def test_bad_extra_parameters(cls: type, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        cls(MemoryBackend(), 10, 10.0, **kwargs)


def test_bad_clock_and_prefix_and_backend() -> None:
    with pytest.raises(TypeError, match="clock"):
        ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 1, 1.0, clock=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key_prefix"):
        ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 1, 1.0, key_prefix=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="backend"):
        ratelimiter.FixedWindowRateLimiter(object(), 1, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_keys"):
        MemoryBackend(max_keys=0)


@pytest.mark.parametrize("value", [math.nan, math.inf, "soon", None, 10**400])
def test_clock_returning_garbage_raises(value: object) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 1, 1.0, clock=lambda: value)
    with pytest.raises(ConfigurationError, match="clock"):
        limiter.is_allowed("k")


def test_clock_exception_propagates() -> None:
    def broken() -> float:
        raise RuntimeError("clock is down")

    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 1, 1.0, clock=broken)
    with pytest.raises(RuntimeError, match="clock is down"):
        limiter.is_allowed("k")


def test_bad_config_provider_values_raise_on_call(clock: FakeClock) -> None:
    class Broken:
        def get_limit(self) -> int:
            return -3

        def get_window(self) -> float:
            return 10.0

    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 5, 10.0, clock=clock,
                                                 config_provider=Broken())
    with pytest.raises(ConfigurationError, match="limit"):
        limiter.is_allowed("k")


def test_time_going_backwards_is_safe() -> None:
    clock = FakeClock(1_000.0)
    for cls in ALL_LIMITERS:
        limiter = cls(MemoryBackend(), 3, 10.0, clock=clock)
        limiter.is_allowed("k")
        clock.now = 900.0
        result = limiter.is_allowed("k")
        assert result.retry_after >= 0 and not math.isnan(result.retry_after)
        assert result.reset_after >= 0
        clock.now = 1_000.0


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_bad_key_in_a_batch_decides_nothing(cls: type, clock: FakeClock) -> None:
    limiter = cls(MemoryBackend(), 3, 10.0, clock=clock)
    with pytest.raises(ConfigurationError, match="key"):
        limiter.is_allowed_many(["a", "b", 5])
    assert limiter._impl.state("a") == [] and limiter._impl.state("b") == []
    assert [r.allowed for r in limiter.is_allowed_many(iter(["a"] * 4))].count(True) >= 3
