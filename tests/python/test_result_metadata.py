"""`result.metadata` never changes once the result exists: each read is a new dict."""

from __future__ import annotations

import pickle

from conftest import FakeClock

import ratelimiter
from ratelimiter import MemoryBackend, MultiRateLimiter, RateLimitResult


def test_mutating_read_metadata_leaves_a_native_result_unchanged(clock: FakeClock) -> None:
    clock.now = 1_020.5
    r = ratelimiter.FixedWindowRateLimiter(MemoryBackend(), 2, 60.0, clock=clock).is_allowed("k")
    first = r.metadata
    assert type(first) is dict
    first["count"] = 99
    first["extra"] = True
    assert r.metadata == {"window_start": 1_020.0, "count": 1}
    assert r.metadata is not r.metadata
    assert pickle.loads(pickle.dumps(r)).metadata == {"window_start": 1_020.0, "count": 1}


def test_mutating_read_metadata_leaves_a_python_built_result_unchanged() -> None:
    given = {"x": 1}
    r = RateLimitResult(allowed=True, key="k", limit=1, remaining=0, reset_after=1.0,
                        retry_after=0.0, metadata=given)
    given["x"] = 2
    r.metadata["x"] = 3
    assert r.metadata == {"x": 1}
    assert r == pickle.loads(pickle.dumps(r))


def test_mutating_read_metadata_leaves_a_multi_result_unchanged(clock: FakeClock) -> None:
    limiter = MultiRateLimiter(MemoryBackend(), ["2/minute", "10/hour"], clock=clock)
    r = limiter.is_allowed("k")
    r.metadata["limits"][0]["remaining"] = 99
    r.metadata["limits"].clear()
    assert [item["remaining"] for item in r.metadata["limits"]] == [1, 9]
