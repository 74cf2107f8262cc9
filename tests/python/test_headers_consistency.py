"""Rate-limit headers are self-consistent for every algorithm: Remaining never exceeds the
Limit they announce (bursty algorithms announce their capacity), in both header styles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import ALL_LIMITERS, FakeClock

import ratelimiter
from ratelimiter import MemoryBackend


def _check(result: Any) -> None:
    headers = result.headers
    assert int(headers["X-RateLimit-Remaining"]) <= int(headers["X-RateLimit-Limit"])
    ietf = result.ietf_headers
    q = int(re.search(r";q=(\d+)", ietf["RateLimit-Policy"]).group(1))  # type: ignore[union-attr]
    r = int(re.search(r";r=(\d+)", ietf["RateLimit"]).group(1))  # type: ignore[union-attr]
    assert r <= q
    assert int(headers["X-RateLimit-Limit"]) == q == result.advertised_limit


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_remaining_never_exceeds_limit(cls: type[ratelimiter.BaseAlgorithm],
                                       clock: FakeClock) -> None:
    limiter: Any = cls(MemoryBackend(), 10, 60.0, clock=clock)
    for _ in range(40):
        _check(limiter.is_allowed("k"))
        clock.advance(0.5)
    _check(limiter.peek("k"))


def test_adaptive_announces_its_burst_capacity(clock: FakeClock) -> None:
    """The reported inconsistency: limit 100 announced with 199 remaining."""
    limiter = ratelimiter.AdaptiveRateLimiter(MemoryBackend(), 100, 60.0, clock=clock)
    headers = limiter.is_allowed("k").headers
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("200", "199")
    for _ in range(150):
        limiter.is_allowed("k")
    # Still the capacity, not the long-run rate, once Remaining is below 100.
    assert limiter.is_allowed("k").headers["X-RateLimit-Limit"] == "200"


def test_gcra_with_larger_burst(clock: FakeClock) -> None:
    limiter = ratelimiter.GCRARateLimiter(MemoryBackend(), 10, 60.0, burst=20, clock=clock)
    result = limiter.is_allowed("k")
    assert result.remaining == 19
    _check(result)


def test_plain_algorithms_announce_limit(clock: FakeClock) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 10, 60.0, clock=clock)
    assert limiter.is_allowed("k").headers["X-RateLimit-Limit"] == "10"
