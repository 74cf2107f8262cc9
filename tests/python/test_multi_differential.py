"""MultiRateLimiter against plain limiters, on every store (hypothesis).

* One limit: a MultiRateLimiter decides exactly like the plain limiter of its algorithm.
* Several limits: it decides like the conjunction computed by plain limiters — for each
  request, one plain limiter per limit replays the admitted history on fresh keys (a copy)
  and is asked; the request is admitted iff all of them admit, and then only is it recorded.
"""

from __future__ import annotations

import itertools
import tempfile
from typing import Any

import pytest
import redis
from conftest import DictBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

import ratelimiter
from ratelimiter import Limit, MemoryBackend, MultiRateLimiter, RedisBackend, SQLiteBackend

pytestmark = [pytest.mark.slow]

CLASSES = {
    "fixed_window": ratelimiter.FixedWindowRateLimiter,
    "sliding_window": ratelimiter.SlidingWindowRateLimiter,
    "sliding_window_counter": ratelimiter.SlidingWindowCounterRateLimiter,
    "token_bucket": ratelimiter.TokenBucketRateLimiter,
    "leaky_bucket": ratelimiter.LeakyBucketRateLimiter,
    "gcra": ratelimiter.GCRARateLimiter,
    "adaptive": ratelimiter.AdaptiveRateLimiter,  # per-key load mode, default parameters
}
TIME_STEPS = [0.0, 0.0, 0.001, 0.1, 0.25, 0.5, 1.0, 3.3, 10.0, -0.2]
STARTS = [1_000.0, 1_712_345_678.123]
step = st.tuples(st.sampled_from(TIME_STEPS), st.integers(1, 8), st.integers(0, 6))
trace = st.lists(step, min_size=1, max_size=40)
limit_st = st.builds(Limit, st.integers(1, 8), st.sampled_from([0.5, 1.0, 2.5, 7.0]))
_ids = itertools.count()
_dir = tempfile.mkdtemp(prefix="rl-multi-diff-")


@pytest.fixture(scope="module")
def redis_port() -> Any:
    with RedisServer() as server:
        yield server.port


def backends(redis_port: int) -> list[Any]:
    return [MemoryBackend(), SQLiteBackend(f"{_dir}/d{next(_ids)}.db"),
            RedisBackend(redis.Redis(port=redis_port), use_server_time=False), DictBackend()]


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-9


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(algorithm=st.sampled_from(sorted(CLASSES)), limit=limit_st,
       start=st.sampled_from(STARTS), steps=trace)
def test_one_limit_decides_like_the_plain_limiter(redis_port: int, algorithm: str, limit: Limit,
                                                  start: float, steps: list[Any]) -> None:
    _one_limit_like_the_plain_limiter(redis_port, algorithm, limit, start, steps)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=limit_st, start=st.sampled_from(STARTS), steps=trace)
def test_one_adaptive_limit_decides_like_the_plain_limiter(
        redis_port: int, limit: Limit, start: float, steps: list[Any]) -> None:
    """Adaptive's three layers (load sensor, guard, bucket) on every store, on their own
    examples: the shared test above gives each algorithm only a few."""
    _one_limit_like_the_plain_limiter(redis_port, "adaptive", limit, start, steps)


def _one_limit_like_the_plain_limiter(redis_port: int, algorithm: str, limit: Limit,
                                      start: float, steps: list[Any]) -> None:
    now = [start]
    prefix = f"one{next(_ids)}:"
    for backend in backends(redis_port):
        now[0] = start
        multi = MultiRateLimiter(backend, limit, algorithm, key_prefix=prefix + "m",
                                 clock=lambda: now[0])
        plain = CLASSES[algorithm](backend, limit.amount, limit.window, key_prefix=prefix + "p",
                                   clock=lambda: now[0])
        for dt, cost, op in steps:
            now[0] += dt
            a = multi.peek("k") if op == 0 else multi.is_allowed("k", cost)
            b = plain.peek("k") if op == 0 else plain.is_allowed("k", cost)
            where = (type(backend).__name__, now[0], cost, op)
            assert (a.allowed, a.remaining, a.limit) == (b.allowed, b.remaining, b.limit), where
            assert _close(a.retry_after, b.retry_after), where
            assert _close(a.reset_after, b.reset_after), where
            plain_meta = dict(b.metadata)
            multi_meta = {k: v for k, v in a.metadata.items() if k != "limits"}
            assert multi_meta == plain_meta, where


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(algorithm=st.sampled_from(sorted(CLASSES)),
       limits=st.lists(limit_st, min_size=2, max_size=3, unique=True),
       start=st.sampled_from(STARTS), steps=trace)
def test_several_limits_decide_like_the_conjunction(redis_port: int, algorithm: str,
                                                    limits: list[Limit], start: float,
                                                    steps: list[Any]) -> None:
    now = [start]
    stores = backends(redis_port)
    prefix = f"many{next(_ids)}:"
    multis = [MultiRateLimiter(b, limits, algorithm, key_prefix=prefix, clock=lambda: now[0])
              for b in stores]
    history: list[tuple[float, int]] = []
    for dt, cost, _op in steps:
        now[0] += dt
        at = now[0]
        verdicts = []
        for limit in limits:
            # A copy of this limit's state: a plain limiter replaying the admitted history.
            copy = CLASSES[algorithm](MemoryBackend(), limit.amount, limit.window,
                                      clock=lambda: now[0])
            for then, units in history:
                now[0] = then
                assert copy.is_allowed("k", units).allowed
            now[0] = at
            verdicts.append(copy.is_allowed("k", cost))
        expected = all(v.allowed for v in verdicts)
        for backend, multi in zip(stores, multis):
            result = multi.is_allowed("k", cost)
            where = (type(backend).__name__, at, cost, history)
            assert result.allowed == expected, where
            for verdict, own in zip(verdicts, result.metadata["limits"]):
                if expected:
                    assert own["remaining"] == verdict.remaining, where
                elif not verdict.allowed:
                    assert not own["allowed"], where
                    assert _close(own["retry_after"], verdict.retry_after), where
        if expected:
            history.append((at, cost))
