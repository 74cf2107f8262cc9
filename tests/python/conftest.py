"""Shared fixtures: a hand-driven clock and the seven limiter classes."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import ratelimiter

ALL_LIMITERS: list[type[ratelimiter.BaseAlgorithm]] = [
    ratelimiter.FixedWindowRateLimiter,
    ratelimiter.SlidingWindowRateLimiter,
    ratelimiter.SlidingWindowCounterRateLimiter,
    ratelimiter.TokenBucketRateLimiter,
    ratelimiter.LeakyBucketRateLimiter,
    ratelimiter.AdaptiveRateLimiter,
    ratelimiter.GCRARateLimiter,
]


class FakeClock:
    """A clock tests advance by hand; call it to read the time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_exact(cls: type[ratelimiter.BaseAlgorithm], backend: Any, limit: int, window: float,
               **kwargs: Any) -> Any:
    """A limiter of `cls` that admits exactly `limit` at one instant (adaptive: no burst)."""
    if cls is ratelimiter.AdaptiveRateLimiter:
        kwargs.setdefault("burst_multiplier", 1.0)
    factory: Callable[..., Any] = cls
    return factory(backend, limit, window, **kwargs)
