"""RateLimitResult: fields, headers, equality, repr, immutability."""

from __future__ import annotations

import math
import pickle

import pytest
from conftest import FakeClock

import ratelimiter
from ratelimiter import MemoryBackend, RateLimitResult


def test_constructed_in_python_like_a_dataclass() -> None:
    r = RateLimitResult(allowed=True, key="k", limit=10, remaining=9, reset_after=6.0,
                        retry_after=0.0, metadata={"x": 1})
    assert r == RateLimitResult(allowed=True, key="k", limit=10, remaining=9, reset_after=6.0,
                                retry_after=0.0, metadata={"x": 1})
    assert r != RateLimitResult(allowed=True, key="k", limit=10, remaining=8, reset_after=6.0,
                                retry_after=0.0, metadata={"x": 1})
    assert repr(r) == ("RateLimitResult(allowed=True, key='k', limit=10, remaining=9, "
                       "reset_after=6.0, retry_after=0.0, metadata={'x': 1})")
    with pytest.raises(AttributeError):
        r.allowed = False  # type: ignore[misc]
    assert hash(r) == hash(pickle.loads(pickle.dumps(r)))
    assert pickle.loads(pickle.dumps(r)) == r


def test_headers_allowed_and_rejected(clock: FakeClock) -> None:
    limiter = ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 2, 60.0, clock=clock)
    clock.now = 1_020.5  # window [1020, 1080)
    assert limiter.is_allowed("k").headers == {
        "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "60",
    }
    limiter.is_allowed("k")
    rejected = limiter.is_allowed("k")
    assert rejected.headers == {
        "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60",
        "Retry-After": "60",
    }
    assert rejected.retry_after == pytest.approx(59.5)
    assert rejected.ietf_headers == {
        "RateLimit-Policy": '"default";q=2;w=60',
        "RateLimit": '"default";r=0;t=60',
        "Retry-After": "60",
    }


def test_retry_after_is_whole_seconds_rounded_up(clock: FakeClock) -> None:
    limiter = ratelimiter.TokenBucketRateLimiter(MemoryBackend(), 1, 4.0, clock=clock)
    limiter.is_allowed("k")
    clock.advance(1.5)
    rejected = limiter.is_allowed("k")
    assert rejected.retry_after == pytest.approx(2.5)
    assert rejected.headers["Retry-After"] == "3"


def test_metadata_is_a_fresh_dict_and_result_fields(clock: FakeClock) -> None:
    r = ratelimiter.GCRARateLimiter(MemoryBackend(), 4, 8.0, clock=clock).is_allowed("k", 2)
    assert (r.allowed, r.key, r.limit, r.remaining, r.retry_after) == (True, "k", 4, 2, 0.0)
    assert r.reset_after == pytest.approx(4.0)
    assert r.metadata == {"tat": pytest.approx(1_004.0)}
    assert bool(r) is True
    assert math.isfinite(r.reset_after)
