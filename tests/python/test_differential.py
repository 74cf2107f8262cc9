"""One behaviour, every store: random traces of (key, time, cost) give the same decisions on
MemoryBackend, RedisBackend (client clock) on a redis-server and, when available, on fakeredis
(the scripts without Redis's `struct` library), SQLiteBackend on a file and a user's own
BaseBackend (conftest's DictBackend). This is the one randomised cross-store test; the fixed
cases every store must reproduce exactly are the golden traces (test_golden_traces.py).

Hypothesis explores new traces on every run (45 per algorithm); under CI the seed is fixed
(see conftest.py). To reproduce a failure, rerun with the seed it printed:
``pytest tests/python/test_differential.py --hypothesis-seed=N`` (or ``HYPOTHESIS_SEED=N``).

The Lua scripts and the SQLite store must reproduce the C++ step functions exactly (same
floating-point operations in the same order); any drift shows up here as a counterexample.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from typing import Any, Callable

import pytest
import redis
from conftest import DictBackend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

import ratelimiter
from ratelimiter.backends import MemoryBackend, RedisBackend

pytestmark = [pytest.mark.slow]

# Time steps mix sub-millisecond gaps, window-scale jumps and small clock regressions.
TIME_STEPS = [0.0, 0.0, 0.0, 0.001, 0.013, 0.1, 0.25, 0.5, 1.0, 3.3, 10.0, 61.0, -0.2]
STARTS = [1_000.0, 1_712_345_678.123]  # epoch-scale times stress rounding at boundaries
WINDOWS = [0.5, 1.0, 2.5, 7.0, 30.0]

step = st.tuples(
    st.sampled_from(["a", "b", "c"]),  # key
    st.sampled_from(TIME_STEPS),  # clock advance before the call
    st.integers(1, 12),  # cost (sometimes above the limit)
    st.integers(0, 9),  # 0 → peek instead of is_allowed
)
trace = st.lists(step, min_size=1, max_size=160)

EXTRAS: dict[str, Any] = {
    "FixedWindowRateLimiter": st.just({}),
    "SlidingWindowRateLimiter": st.just({}),
    "SlidingWindowCounterRateLimiter": st.just({}),
    "TokenBucketRateLimiter": st.fixed_dictionaries(
        {"refill_rate": st.sampled_from([None, 0.37, 5.0])}),
    "LeakyBucketRateLimiter": st.fixed_dictionaries(
        {"leak_rate": st.sampled_from([None, 0.37, 5.0])}),
    "AdaptiveRateLimiter": st.fixed_dictionaries({
        "burst_multiplier": st.sampled_from([1.0, 1.5, 2.0]),
        "penalty": st.sampled_from([0.0, 0.5, 0.9]),
        "adaptive_window": st.sampled_from([None, 3.0]),
    }),
    "GCRARateLimiter": st.fixed_dictionaries({"burst": st.sampled_from([None, 1, 3, 12])}),
}
CLASSES = {name: getattr(ratelimiter, name) for name in EXTRAS}
_example_ids = itertools.count()


def _sqlite_factory() -> Callable[[], Any] | None:
    """SQLiteBackend on a file, if that backend exists and works in this build."""
    try:
        from ratelimiter.backends.sqlite_backend import SQLiteBackend

        directory = tempfile.mkdtemp(prefix="rl-diff-")
        SQLiteBackend(f"{directory}/probe.db")
    except Exception:  # noqa: BLE001 - not built yet: compare memory and Redis only
        return None
    counter = itertools.count()
    return lambda: SQLiteBackend(f"{directory}/diff-{next(counter)}.db")


SQLITE = _sqlite_factory()


def _fakeredis_backend() -> Any:
    """RedisBackend on fakeredis (Lua through lupa), if both are installed."""
    try:
        import fakeredis
        import lupa  # noqa: F401 - fakeredis runs scripts only with it
    except ImportError:
        return None
    return RedisBackend(fakeredis.FakeRedis(), use_server_time=False)


FAKEREDIS = _fakeredis_backend()


@pytest.fixture(scope="module")
def redis_backend() -> Any:
    with RedisServer() as server:
        backend = RedisBackend(redis.Redis(port=server.port), use_server_time=False, timeout=5.0)
        yield backend
        backend.close()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isinf(a) or math.isinf(b):
            return a == b
        return abs(a - b) <= 1e-9
    return bool(a == b)


def _assert_same(reference: Any, other: Any, where: str) -> None:
    for field in ("allowed", "remaining", "retry_after", "reset_after", "limit", "key"):
        assert _same(getattr(reference, field), getattr(other, field)), (
            where, field, reference, other)
    assert reference.metadata.keys() == other.metadata.keys(), (where, reference, other)
    for name, value in reference.metadata.items():
        assert _same(value, other.metadata[name]), (where, name, reference, other)


def _run(redis_backend: Any, name: str, limit: int, window: float, extras: dict[str, Any],
         start: float, steps: list[tuple[str, float, int, int]]) -> None:
    now = [start]
    prefix = f"diff{next(_example_ids)}:"  # fresh keys for every example
    backends = [MemoryBackend(), redis_backend, DictBackend()] + (
        [SQLITE()] if SQLITE else []) + ([FAKEREDIS] if FAKEREDIS else [])
    limiters = [CLASSES[name](b, limit, window, **extras, key_prefix=prefix,
                              clock=lambda: now[0]) for b in backends]
    for i, (key, dt, cost, op) in enumerate(steps):
        now[0] += dt
        results = [lim.peek(key) if op == 0 else lim.is_allowed(key, cost) for lim in limiters]
        for backend, result in zip(backends[1:], results[1:]):
            _assert_same(results[0], result, f"step {i} on {backend!r}")


def _differential(name: str) -> Any:
    @settings(max_examples=45, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(limit=st.integers(1, 10), window=st.sampled_from(WINDOWS), extras=EXTRAS[name],
           start=st.sampled_from(STARTS), steps=trace)
    def test(redis_backend: Any, limit: int, window: float, extras: dict[str, Any],
             start: float, steps: list[tuple[str, float, int, int]]) -> None:
        _run(redis_backend, name, limit, window, extras, start, steps)

    return test


test_fixed_window = _differential("FixedWindowRateLimiter")
test_sliding_window = _differential("SlidingWindowRateLimiter")
test_sliding_window_counter = _differential("SlidingWindowCounterRateLimiter")
test_token_bucket = _differential("TokenBucketRateLimiter")
test_leaky_bucket = _differential("LeakyBucketRateLimiter")
test_adaptive = _differential("AdaptiveRateLimiter")
test_gcra = _differential("GCRARateLimiter")


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_long_trace(redis_backend: Any, name: str) -> None:
    """One long deterministic trace per algorithm: states that live through many windows."""
    steps = [("k" + str(i % 2), TIME_STEPS[(i * 7) % len(TIME_STEPS)] / 4, 1 + (i * 5) % 4,
              i % 11) for i in range(2_000)]
    _run(redis_backend, name, 6, 2.5, {}, STARTS[1], steps)
