"""Algorithms under hostile conditions: runtime parameter changes, corrupt state, GCRA at
epoch-scale times and forward clock glitches, on every store (memory, a SQLite file, a real Redis).

Every test drives a frozen FakeClock: exact admitted counts, no sleeps.
"""

from __future__ import annotations

import math
import random
import sqlite3
import struct
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from conftest import ALL_LIMITERS, DictBackend, FakeClock, make_exact
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer

import ratelimiter
from ratelimiter import BackendError, DynamicConfig
from ratelimiter.backends import MemoryBackend, RedisBackend, SQLiteBackend

YEAR = 365 * 86_400.0
INLINE_LOG = 64  # SqliteStore::kLogInlineEntries: a longer sliding log is stored as rows
STORES = ["memory", "sqlite", "redis"]
# The sliding-window log stores timestamps, never a window index or a rate: nothing to carry
# (its clock-glitch rule is tested on its own below, and in the glitch test every algorithm).
CARRYING = [c for c in ALL_LIMITERS if c is not ratelimiter.SlidingWindowRateLimiter]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def make_backend(redis_server: RedisServer, tmp_path: Any) -> Iterator[Callable[[str], Any]]:
    made: list[Any] = []

    def make(store: str) -> Any:
        if store == "memory":
            backend: Any = MemoryBackend()
        elif store == "sqlite":
            backend = SQLiteBackend(str(tmp_path / f"rl-{len(made)}.db"))
        else:
            client = redis_server.client()
            client.flushall()
            backend = RedisBackend(client, use_server_time=False)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        close = getattr(backend, "close", None)
        if close:
            close()


def _admitted(limiter: Any, n: int) -> int:
    return sum(limiter.is_allowed("k").allowed for _ in range(n))


# ---- a window / limit change at runtime ---------------------------------------------------------

@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_raising_the_window_neither_locks_out_nor_grants_a_fresh_quota(
        store: str, cls: Any, make_backend: Callable[[str], Any]) -> None:
    clock = FakeClock(1_000.5)
    cfg = DynamicConfig(limit=5, window=1)
    limiter = make_exact(cls, make_backend(store), 5, 1, config_provider=cfg, clock=clock)
    assert _admitted(limiter, 8) == 5
    cfg.update(window=60)
    # The units just admitted still count: no fresh quota by accident...
    first = limiter.is_allowed("k")
    assert not first.allowed
    # ...and the wait is bounded by the new window, not ~1e11 s.
    assert 0 < first.retry_after <= 60.0 + 1e-6
    clock.advance(3_600)
    result = limiter.is_allowed("k")
    assert result.allowed
    assert 0 <= result.remaining <= 5


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_lowering_the_window_takes_effect_within_the_new_window(
        store: str, cls: Any, make_backend: Callable[[str], Any]) -> None:
    clock = FakeClock(1_000.5)
    cfg = DynamicConfig(limit=5, window=60)
    limiter = make_exact(cls, make_backend(store), 5, 60, config_provider=cfg, clock=clock)
    assert _admitted(limiter, 8) == 5
    cfg.update(window=1, limit=2)
    clock.advance(601)  # past two old adaptive windows (5·60 s): nothing may hold the old count
    assert _admitted(limiter, 5) == 2


@pytest.mark.parametrize("store", STORES)
def test_gcra_rate_change_carries_the_units_in_flight(
        store: str, make_backend: Callable[[str], Any]) -> None:
    clock = FakeClock(1_000.0)
    cfg = DynamicConfig(limit=10, window=10)  # T = 1 s
    limiter = ratelimiter.GCRARateLimiter(make_backend(store), 10, 10, config_provider=cfg,
                                          clock=clock)
    assert _admitted(limiter, 4) == 4  # 4 units in flight
    cfg.update(window=100)  # T = 10 s: the 4 units now drain at 0.1 unit/s
    assert _admitted(limiter, 10) == 6
    clock.advance(10)  # one unit drained at the new rate
    assert _admitted(limiter, 3) == 1


# ---- corrupt state never over-admits ------------------------------------------------------------

def _tamper_sqlite(path: str, values: list[float]) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE rl_state SET state = ?", (struct.pack(f"<{len(values)}d", *values),))


def _tamper_redis(client: Any, values: list[float]) -> None:
    for key in client.keys("*"):
        if client.type(key) == b"string":
            client.set(key, struct.pack(f"<{len(values)}d", *values))


STATE_SIZES = {
    ratelimiter.FixedWindowRateLimiter: 3, ratelimiter.SlidingWindowCounterRateLimiter: 4,
    ratelimiter.TokenBucketRateLimiter: 2, ratelimiter.LeakyBucketRateLimiter: 2,
    ratelimiter.AdaptiveRateLimiter: 10, ratelimiter.GCRARateLimiter: 2,
}
POISON = [[math.nan] * 10, [1e300, -1e300] * 5, [-1e300, 1e300] * 5, [math.inf] * 10,
          [-5.0] * 10, [1e18] * 10]


@pytest.mark.parametrize("store", ["dict", "sqlite", "redis"])
@pytest.mark.parametrize("cls", CARRYING, ids=lambda c: c.__name__)
@pytest.mark.parametrize("poison", POISON, ids=lambda p: repr(p[:2]))
def test_tampered_state_never_over_admits(store: str, cls: Any, poison: list[float],
                                          redis_server: RedisServer, tmp_path: Any) -> None:
    clock = FakeClock(1_000.0)
    values = poison[:STATE_SIZES[cls]]
    if store == "dict":
        backend: Any = DictBackend()
    elif store == "sqlite":
        backend = SQLiteBackend(str(tmp_path / "rl.db"))
    else:
        client = redis_server.client()
        client.flushall()
        backend = RedisBackend(client, use_server_time=False)
    limiter = make_exact(cls, backend, 5, 60, clock=clock)
    assert limiter.is_allowed("k").allowed
    if store == "dict":
        for key in backend.data:
            backend.data[key] = list(values)
    elif store == "sqlite":
        _tamper_sqlite(str(tmp_path / "rl.db"), values)
    else:
        _tamper_redis(client, values)
    results = [limiter.is_allowed("k") for _ in range(50)]
    assert sum(r.allowed for r in results) <= 5
    assert all(0 <= r.remaining <= 5 for r in results)
    peeked = limiter.peek("k")
    assert 0 <= peeked.remaining <= 5


doubles = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1.0, 5.0, 1e300, -1e300, 2.0**53, 1_000.0, 1_000.0 + YEAR, 1e-300])


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cls=st.sampled_from(CARRYING), data=st.data(),
       advances=st.lists(st.sampled_from([0.0, 0.0, 0.5, 7.0, 61.0]), min_size=1,
                         max_size=12))
def test_decoders_accept_arbitrary_doubles_without_over_admitting(
        cls: Any, data: Any, advances: list[float]) -> None:
    clock = FakeClock(1_000.0)
    backend = DictBackend()
    limiter = make_exact(cls, backend, 5, 60, clock=clock)
    assert limiter.is_allowed("k").allowed
    (key,) = backend.data
    backend.data[key] = data.draw(st.lists(doubles, min_size=STATE_SIZES[cls],
                                           max_size=STATE_SIZES[cls]))
    admitted = 0
    for advance in advances:
        clock.advance(advance)
        result = limiter.is_allowed("k")
        admitted += result.allowed
        assert 0 <= result.remaining <= 5
        assert result.retry_after >= 0
    # At most one fresh quota, plus what the elapsed time refills (<= 5 per 60 s, and the
    # adaptive bucket up to burst), plus whatever partial state the poison left: bounded.
    elapsed = sum(advances)
    assert admitted <= 5 + 5 * math.ceil(elapsed / 60.0) + 5


# ---- bucket debt (MultiRateLimiter.adjust): legitimate, bounded, never corrupt ------------------

BUCKET_CLASSES = [ratelimiter.TokenBucketRateLimiter, ratelimiter.LeakyBucketRateLimiter,
                  ratelimiter.GCRARateLimiter]


def _in_debt(cls: Any, debt: float, last: float) -> list[float]:
    """The state a charge of 5 + debt units leaves in a 5-unit bucket at `last`."""
    if cls is ratelimiter.TokenBucketRateLimiter:
        return [-debt, last]
    return [5.0 + debt, last]  # leaky bucket level / GCRA units in flight


@settings(max_examples=200, deadline=None)
@given(cls=st.sampled_from(BUCKET_CLASSES),
       debt=st.floats(min_value=0.0, max_value=5.0) | st.integers(0, 5).map(float))
def test_debt_an_adjust_wrote_is_honoured_exactly(cls: Any, debt: float) -> None:
    """Up to one whole bucket of debt is a state adjust writes, not corruption: the plain
    limiter waits exactly until it is repaid (5 per 60 s: 12 s a unit)."""
    clock = FakeClock(1_000.0)
    backend = DictBackend()
    limiter = cls(backend, 5, 60, clock=clock)
    assert limiter.is_allowed("k").allowed
    (key,) = backend.data
    backend.data[key] = _in_debt(cls, debt, 1_000.0)
    rejected = limiter.is_allowed("k")
    assert not rejected.allowed
    assert rejected.remaining == 0
    assert rejected.retry_after == pytest.approx((1.0 + debt) * 12.0, rel=1e-12)
    clock.advance(rejected.retry_after)
    assert limiter.is_allowed("k").allowed


@pytest.mark.parametrize("store", ["dict", "sqlite", "redis"])
@pytest.mark.parametrize("cls", BUCKET_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("debt", "retry"), [(3.0, 48.0), (5.0, 72.0), (1e6, 72.0),
                                             (1e300, None)])
def test_debt_beyond_one_bucket_is_clamped_and_garbage_is_fresh(
        store: str, cls: Any, debt: float, retry: Any, redis_server: RedisServer,
        tmp_path: Any) -> None:
    """Within one bucket: exact wait; beyond (a capacity lowered while in debt): clamped to
    one bucket (72 s); beyond 2**52 units (nothing could write it): a fresh key."""
    clock = FakeClock(1_000.0)
    if store == "dict":
        backend: Any = DictBackend()
    elif store == "sqlite":
        backend = SQLiteBackend(str(tmp_path / "rl.db"))
    else:
        client = redis_server.client()
        client.flushall()
        backend = RedisBackend(client, use_server_time=False)
    limiter = cls(backend, 5, 60, clock=clock)
    assert limiter.is_allowed("k").allowed
    values = _in_debt(cls, debt, 1_000.0)
    if store == "dict":
        (key,) = backend.data
        backend.data[key] = values
    elif store == "sqlite":
        _tamper_sqlite(str(tmp_path / "rl.db"), values)
    else:
        _tamper_redis(client, values)
    if retry is None:
        assert _admitted(limiter, 8) == 5
        return
    result = limiter.is_allowed("k")
    assert not result.allowed
    assert result.retry_after == pytest.approx(retry, abs=1e-9)


def test_nan_state_from_a_custom_backend_is_a_fresh_key() -> None:
    for cls in CARRYING:
        backend = DictBackend()
        limiter = make_exact(cls, backend, 5, 60, clock=FakeClock(1_000.0))
        assert limiter.is_allowed("k").allowed
        for key in backend.data:
            backend.data[key] = [math.nan] * STATE_SIZES[cls]
        assert _admitted(limiter, 20) == 5, cls.__name__


def test_corrupt_sliding_log_is_an_error_not_an_admission() -> None:
    backend = DictBackend()
    limiter = ratelimiter.SlidingWindowRateLimiter(backend, 5, 60, clock=FakeClock(1_000.0))
    assert limiter.is_allowed("k").allowed
    for key in backend.data:
        backend.data[key] = [math.nan, math.nan]
    with pytest.raises(BackendError):
        limiter.is_allowed("k")


# ---- GCRA admits exactly what a token bucket admits ---------------------------------------------

def _pairs(n: int, seed: int) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    windows = [0.1, 0.3, 1.0, 1.7, 3.0, 7.0, 10.0, 13.0, 60.0, 61.3, 3_600.0, 86_400.0]
    return [(rng.randint(1, 200), rng.choice(windows) * rng.choice([1, 1, 1.1, 0.37]))
            for _ in range(n)]


def test_gcra_equals_token_bucket_at_epoch_scale_times_memory() -> None:
    backend = MemoryBackend()
    clock = FakeClock(1.7e9)
    for i, (limit, window) in enumerate(_pairs(2_000, seed=7)):
        gcra = ratelimiter.GCRARateLimiter(backend, limit, window, clock=clock)
        bucket = ratelimiter.TokenBucketRateLimiter(backend, limit, window, clock=clock)
        key = f"k{i}"
        got = sum(gcra.is_allowed(key).allowed for _ in range(limit + 2))
        want = sum(bucket.is_allowed(key).allowed for _ in range(limit + 2))
        assert got == want == limit, (limit, window)


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_gcra_equals_token_bucket_at_epoch_scale_times(
        store: str, make_backend: Callable[[str], Any]) -> None:
    backend = make_backend(store)
    clock = FakeClock(1.7e9)
    for i, (limit, window) in enumerate(_pairs(60, seed=11)):
        gcra = ratelimiter.GCRARateLimiter(backend, limit, window, clock=clock)
        assert sum(gcra.is_allowed(f"k{i}").allowed for _ in range(limit + 2)) == limit


def test_gcra_batch_on_the_real_clock_admits_exactly_limit() -> None:
    backend = MemoryBackend()
    for limit in range(1, 201):
        gcra = ratelimiter.GCRARateLimiter(backend, limit, 1.0)
        results = gcra.is_allowed_many([f"k{limit}"] * limit)
        assert sum(r.allowed for r in results) == limit


# ---- forward clock glitch -----------------------------------------------------------------------

@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_a_corrected_forward_clock_glitch_neither_locks_nor_refills(
        store: str, cls: Any, make_backend: Callable[[str], Any]) -> None:
    clock = FakeClock(1_000.0)
    limiter = make_exact(cls, make_backend(store), 5, 60, clock=clock)
    clock.now = 1_000.0 + YEAR  # one request from a clock a year ahead
    assert limiter.is_allowed("k").allowed
    clock.now = 1_001.0  # corrected
    # The glitched unit still counts (no fresh quota) and the key is usable now.
    assert _admitted(limiter, 10) == 4
    clock.advance(130)
    assert _admitted(limiter, 10) == 5


def _glitch_backend(store: str, make_backend: Callable[[str], Any]) -> Any:
    return DictBackend() if store == "dict" else make_backend(store)


# ---- a glitch on a key at its limit: the re-base is written back even on a rejection ------

GLITCH_STORES = [*STORES, "fakeredis", "dict"]


def _any_backend(store: str, make_backend: Callable[[str], Any]) -> Any:
    if store == "fakeredis":
        fakeredis = pytest.importorskip("fakeredis")
        pytest.importorskip("lupa")
        return RedisBackend(client=fakeredis.FakeRedis(), use_server_time=False)
    return _glitch_backend(store, make_backend)


def _decision(result: Any) -> tuple[Any, ...]:
    limits = result.metadata.get("limits")
    per_limit = tuple((e["allowed"], e["remaining"]) for e in limits) if limits else ()
    return (result.allowed, result.remaining, result.retry_after, result.reset_after, per_limit)


def _glitched_key_decides_like_one_filled_now(limiter: Any, clock: FakeClock,
                                              window: float) -> None:
    """Fills "glitched" at +1 year and "now" at the corrected time, then asks both alike,
    each request spaced by the previous rejection's retry_after, for two windows.

    The glitched key must be re-based to the correction and *stay* re-based though it
    rejects: it decides exactly as the key filled at that instant (no fresh quota, and it
    admits again after one normal refill, not when real time catches up a year later)."""
    start = 1_000.0
    clock.now = start + YEAR
    glitch_admitted = sum(limiter.is_allowed("glitched").allowed for _ in range(30))
    clock.now = start  # corrected
    assert sum(limiter.is_allowed("now").allowed for _ in range(30)) == glitch_admitted > 0
    admitted, first_admission = 0, None
    while clock.now < start + 2 * window:
        glitched, now = limiter.is_allowed("glitched"), limiter.is_allowed("now")
        assert _decision(glitched) == _decision(now), clock.now
        if glitched.allowed:
            admitted += 1
            first_admission = first_admission or clock.now
        else:
            assert 0 < glitched.retry_after <= window + 1e-6
            clock.now += glitched.retry_after
    assert first_admission is not None and first_admission <= start + window + 1e-6
    assert admitted >= 2


@pytest.mark.parametrize("store", GLITCH_STORES)
@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_a_key_full_at_a_glitch_refills_from_the_correction(
        store: str, cls: Any, make_backend: Callable[[str], Any]) -> None:
    """A key filled by a clock a year ahead, asked again at real time: rejected (its units
    still count), and the re-based state is written though the step rejects, so it admits
    after one normal refill period (token bucket 12 s, fixed window at its end, ...)."""
    clock = FakeClock()
    limiter = make_exact(cls, _any_backend(store, make_backend), 5, 60, clock=clock)
    _glitched_key_decides_like_one_filled_now(limiter, clock, 60.0)


@pytest.mark.parametrize("store", GLITCH_STORES)
def test_token_bucket_full_at_a_glitch_admits_after_one_refill_interval(
        store: str, make_backend: Callable[[str], Any]) -> None:
    """The exact numbers of the lockout this fixes: 5 per minute refills one token per 12 s."""
    clock = FakeClock(1_000.0 + YEAR)
    limiter = ratelimiter.TokenBucketRateLimiter(_any_backend(store, make_backend), 5, 60,
                                                 clock=clock)
    assert _admitted(limiter, 6) == 5
    clock.now = 1_000.0
    assert limiter.is_allowed("k").retry_after == pytest.approx(12.0)
    assert limiter.peek("k").retry_after == pytest.approx(12.0)  # the re-base was saved
    clock.now = 1_012.0
    assert _admitted(limiter, 3) == 1
    clock.now = 1_130.0  # 118 s after the last admission: 118/12 tokens, not a year's worth
    assert _admitted(limiter, 10) == 5


@pytest.mark.parametrize("store", GLITCH_STORES)
@pytest.mark.parametrize("algorithm", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_a_multi_key_full_at_a_glitch_refills_from_the_correction(
        store: str, algorithm: Any, make_backend: Callable[[str], Any]) -> None:
    """Two limits: at the correction the minute limit rejects and the hour limit would admit;
    both re-based states are written, neither charged, so the key decides as one filled at
    the correction (the hour limit's remaining shows nothing was consumed)."""
    clock = FakeClock()
    limiter = ratelimiter.MultiRateLimiter(_any_backend(store, make_backend),
                                           "5/minute;50/hour", algorithm, clock=clock)
    _glitched_key_decides_like_one_filled_now(limiter, clock, 60.0)


@pytest.mark.parametrize("store", [*STORES, "dict"])
@pytest.mark.parametrize("limit", [5, 100], ids=["blob", "rows"])  # SQLite: > 64 entries = rows
def test_a_glitched_sliding_log_moves_its_future_entries_to_now(
        store: str, limit: int, make_backend: Callable[[str], Any]) -> None:
    """Entries admitted by a clock a year ahead still count but leave one window after the
    correction: a full key is not locked for a year, a partly used one gets no fresh quota.
    Each glitched request has its own time, so at limit 100 SQLite holds the log as rows."""
    backend = _glitch_backend(store, make_backend)
    clock = FakeClock(1_000.0)
    limiter = ratelimiter.SlidingWindowRateLimiter(backend, limit, 60, clock=clock)
    part = limit * 7 // 10  # 3 or 70
    for i in range(limit):
        clock.now = 1_000.0 + YEAR + i * 0.25
        assert limiter.is_allowed("full").allowed
        if i < part:
            assert limiter.is_allowed("part").allowed
    clock.now = 1_001.0  # corrected

    peeked = limiter.peek("full")
    assert (peeked.allowed, peeked.remaining) == (False, 0)
    assert peeked.retry_after == pytest.approx(60.0)
    # Rejected, and kept so: the wait is one window from the correction, not a year.
    for _ in range(3):
        rejected = limiter.is_allowed("full")
        assert not rejected.allowed
        assert rejected.retry_after == pytest.approx(60.0)  # (rounded up a few ulps)
        assert rejected.reset_after == pytest.approx(60.0)
    clock.now = 1_060.5
    assert limiter.is_allowed("full").retry_after == pytest.approx(0.5)
    clock.now = 1_061.0
    assert sum(limiter.is_allowed("full").allowed for _ in range(limit + 3)) == limit

    clock.now = 1_001.0
    assert sum(limiter.is_allowed("part").allowed for _ in range(limit)) == limit - part
    clock.now = 1_061.0
    assert sum(limiter.is_allowed("part").allowed for _ in range(limit + 3)) == limit

    if store == "sqlite" and limit > INLINE_LOG:  # the glitched rows were replaced by one row
        db = sqlite3.connect(backend.db_path)
        try:
            assert db.execute("SELECT count(*) FROM rl_log WHERE t > 2000").fetchone() == (0,)
        finally:
            db.close()


@pytest.mark.parametrize("store", [*STORES, "dict"])
def test_sliding_log_glitch_tolerance_is_sixty_seconds(
        store: str, make_backend: Callable[[str], Any]) -> None:
    """An entry 60 s ahead is clock skew and kept as written; 61 s ahead is a glitch."""
    clock = FakeClock(1_060.0)
    limiter = ratelimiter.SlidingWindowRateLimiter(
        _glitch_backend(store, make_backend), 1, 10, clock=clock)
    assert limiter.is_allowed("skewed").allowed
    clock.now = 1_061.0
    assert limiter.is_allowed("glitched").allowed
    clock.now = 1_000.0
    # The skewed entry leaves at 1070 as written; the glitched one was moved to 1000.
    assert limiter.is_allowed("skewed").retry_after == pytest.approx(70.0)
    assert limiter.is_allowed("glitched").retry_after == pytest.approx(10.0)


def test_glitch_tolerance_is_sixty_seconds_of_skew() -> None:
    """Within the tolerance the state is trusted as written (skewed servers agree)."""
    clock = FakeClock(1_000.0)
    limiter = ratelimiter.GCRARateLimiter(MemoryBackend(), 2, 2.0, clock=clock)
    clock.now = 1_030.0
    assert _admitted(limiter, 2) == 2
    clock.now = 1_000.0  # 30 s behind: still the newer time, elapsed counts as 0
    result = limiter.is_allowed("k")
    assert not result.allowed
    assert result.retry_after == pytest.approx(1.0)




# Offsets a client's clock may add to real time: none, skew within the tolerance (60 s
# included), just beyond it, a glitch of an hour or a year.
_OFFSETS = [0.0, 0.0, 0.0, 0.0, 30.0, 60.0, 60.5, 3_600.0, YEAR]


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.sampled_from([3, 70]), start=st.sampled_from([1_000.0, 1.7e9]),
       steps=st.lists(st.tuples(st.sampled_from([0.0, 0.01, 0.3, 2.0, 25.0]),
                                st.sampled_from(_OFFSETS), st.integers(1, 3),
                                st.integers(0, 7)), min_size=1, max_size=120))
def test_sliding_log_glitches_decide_alike_on_every_store(
        make_backend: Callable[[str], Any], limit: int, start: float,
        steps: list[tuple[float, float, int, int]]) -> None:
    """Random skewed and glitched clocks: memory, SQLite (blob at limit 3, rows at 70), Redis
    and a Python BaseBackend give the same decisions (same float operations everywhere)."""
    real = [start]
    now = [start]
    backends = [MemoryBackend(), make_backend("sqlite"), make_backend("redis"), DictBackend()]
    limiters = [ratelimiter.SlidingWindowRateLimiter(b, limit, 30, clock=lambda: now[0])
                for b in backends]
    for i, (dt, offset, cost, op) in enumerate(steps):
        real[0] += dt
        now[0] = real[0] + offset
        results = [lim.peek("k") if op == 0 else lim.is_allowed("k", cost) for lim in limiters]
        want = results[0]
        for backend, got in zip(backends[1:], results[1:]):
            where = (i, type(backend).__name__, want, got)
            assert (got.allowed, got.remaining, got.metadata) == (
                want.allowed, want.remaining, want.metadata), where
            for field in ("retry_after", "reset_after"):
                a, b = getattr(want, field), getattr(got, field)
                assert a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a)), where
