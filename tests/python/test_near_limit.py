"""Near-limit alerts: on_near_limit fires once per key per window, on every algorithm.

Every timing here runs on a FakeClock. With limit 10 and the default ratio 0.8 a key is
"near" from its 8th unit used; the alert's re-arm time is the alerting decision's
``reset_after`` (see NearLimitTracker's docstring for the rule per algorithm family).
"""

from __future__ import annotations

import asyncio
import logging
import math
import warnings
from typing import Any, Optional

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact

from ratelimiter import (
    FixedWindowRateLimiter,
    InMemoryMetricsCollector,
    MemoryBackend,
    RateLimitResult,
    TokenBucketRateLimiter,
)
from ratelimiter.metrics import NearLimitTracker, ObservableRateLimiter

LIMIT, WINDOW = 10, 60.0


class Alerts:
    """An on_near_limit callback recording (key, remaining, time) of every call."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, int, float]] = []
        self.results: list[RateLimitResult] = []

    def __call__(self, key: str, result: RateLimitResult) -> None:
        self.calls.append((key, result.remaining, self.clock.now))
        self.results.append(result)


def observed(cls: type, clock: FakeClock, **kwargs: Any) -> tuple[ObservableRateLimiter, Alerts]:
    alerts = Alerts(clock)
    limiter = ObservableRateLimiter(
        make_exact(cls, MemoryBackend(), LIMIT, WINDOW, clock=clock),
        InMemoryMetricsCollector(),
        on_near_limit=alerts,
        **kwargs,
    )
    return limiter, alerts


def send(limiter: ObservableRateLimiter, key: str, n: int) -> list[RateLimitResult]:
    return [limiter.is_allowed(key) for _ in range(n)]


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_once_per_window_then_again_after_the_window(cls: type, clock: FakeClock) -> None:
    limiter, alerts = observed(cls, clock)
    send(limiter, "k", 7)
    assert alerts.calls == []  # 7 of 10 used: below 80 %
    crossing = limiter.is_allowed("k")
    assert alerts.calls == [("k", 2, 1000.0)]  # the 8th unit crosses
    results = send(limiter, "k", 5)  # 9th, 10th, then three rejections
    assert [r.allowed for r in results] == [True, True, False, False, False]
    assert len(alerts.calls) == 1  # not on every request after

    # The window rolls (the quota is fully restored, which is also past the re-arm time
    # crossing.reset_after): a new crossing alerts again, on its 8th unit exactly.
    restored = results[-1].reset_after
    assert restored >= crossing.reset_after
    clock.advance(restored)
    send(limiter, "k", 7)
    assert len(alerts.calls) == 1
    limiter.is_allowed("k")
    assert alerts.calls[1] == ("k", 2, 1000.0 + restored)
    assert len(alerts.calls) == 2


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_silent_until_the_rearm_time_even_if_usage_dips_and_crosses_again(
    cls: type, clock: FakeClock
) -> None:
    limiter, alerts = observed(cls, clock)
    crossing = send(limiter, "k", 8)[-1]
    assert len(alerts.calls) == 1
    rearm_at = clock.now + crossing.reset_after
    # Creep through the window one second at a time; buckets refill below 80 % and are
    # pushed over it again, windows stay full: either way no second alert before rearm_at.
    while clock.now + 1 < rearm_at:
        clock.advance(1)
        send(limiter, "k", 2)
    assert len(alerts.calls) == 1
    # From the re-arm time on, the first decision at or above the ratio alerts.
    clock.now = rearm_at
    while len(alerts.calls) == 1:
        limiter.is_allowed("k")
    assert alerts.calls[1][2] == rearm_at


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_each_key_has_its_own_alert(cls: type, clock: FakeClock) -> None:
    limiter, alerts = observed(cls, clock)
    for key in ("a", "b", "a", "b"):
        send(limiter, key, 5)
    assert sorted(key for key, _, _ in alerts.calls) == ["a", "b"]


def test_a_heavy_request_crossing_at_once_and_a_rejection_both_count(clock: FakeClock) -> None:
    limiter, alerts = observed(TokenBucketRateLimiter, clock)
    assert limiter.is_allowed("big", cost=9).allowed  # 0 -> 9 used in one step
    assert alerts.calls == [("big", 1, 1000.0)]
    # ratio 1.0: only a fully used quota alerts; a rejected request shows it too.
    full, full_alerts = observed(FixedWindowRateLimiter, clock, near_limit_ratio=1.0)
    send(full, "k", 9)
    assert full_alerts.calls == []
    assert full.is_allowed("k", cost=2).allowed is False  # rejected, 9 of 10 used
    assert full_alerts.calls == []
    full.is_allowed("k")
    assert full_alerts.calls == [("k", 0, 1000.0)]


def test_ratio_boundary_is_exact_despite_float_rounding(clock: FakeClock) -> None:
    limiter, alerts = observed(FixedWindowRateLimiter, clock, near_limit_ratio=0.7)
    send(limiter, "k", 6)
    assert alerts.calls == []
    limiter.is_allowed("k")  # 7 used >= 0.7 * 10 (= 7.000000000000001 in floats)
    assert alerts.calls == [("k", 3, 1000.0)]


def test_reset_rearms_and_peek_never_alerts(clock: FakeClock) -> None:
    limiter, alerts = observed(FixedWindowRateLimiter, clock)
    send(limiter, "k", 8)
    for _ in range(3):
        limiter.peek("k")
    assert len(alerts.calls) == 1
    limiter.reset("k")
    send(limiter, "k", 8)
    assert len(alerts.calls) == 2


def test_callback_exception_is_logged_and_the_decision_stands(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(key: str, result: RateLimitResult) -> None:
        raise RuntimeError("smtp down")

    metrics = InMemoryMetricsCollector()
    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock), metrics,
        on_near_limit=broken,
    )
    with caplog.at_level(logging.ERROR, logger="ratelimiter"):
        results = send(limiter, "user-secret", 12)
    assert [r.allowed for r in results] == [True] * 10 + [False] * 2
    assert [r.remaining for r in results[:10]] == list(range(9, -1, -1))
    assert metrics.get_stats("user-secret")["total"] == 12
    errors = [rec for rec in caplog.records if rec.levelno == logging.ERROR]
    assert len(errors) == 1 and "smtp down" in caplog.text
    assert "user-secret" not in errors[0].getMessage()  # keys are not logged


def test_async_callback_awaited_from_is_allowed_async(clock: FakeClock) -> None:
    seen: list[int] = []

    async def notify(key: str, result: RateLimitResult) -> None:
        await asyncio.sleep(0)
        seen.append(result.remaining)

    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock),
        InMemoryMetricsCollector(), on_near_limit=notify,
    )

    async def run() -> None:
        for _ in range(10):
            await limiter.is_allowed_async("k")

    asyncio.run(run())
    assert seen == [2]


def test_async_callback_from_sync_is_allowed_is_logged_not_leaked(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def notify(key: str, result: RateLimitResult) -> None:
        raise AssertionError("never runs")

    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock),
        InMemoryMetricsCollector(), on_near_limit=notify,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine was never awaited" would fail here
        with caplog.at_level(logging.ERROR, logger="ratelimiter"):
            assert all(r.allowed for r in send(limiter, "k", 10))
    assert "is async" in caplog.text


def test_tracker_memory_is_bounded_and_entries_leave_after_rearm() -> None:
    tracker = NearLimitTracker(0.8, max_keys=3)
    near = RateLimitResult(allowed=True, key="", limit=10, remaining=1, reset_after=5.0,
                           retry_after=0.0, metadata={}, window=10.0)
    far = RateLimitResult(allowed=True, key="", limit=10, remaining=9, reset_after=1.0,
                          retry_after=0.0, metadata={}, window=10.0)
    clock = FakeClock(0.0)
    assert [tracker.observe(f"k{i}", near, clock) for i in range(5)] == [True] * 5
    assert len(tracker) == 3  # k0 and k1 were forgotten (oldest first)
    clock.advance(4.9)
    assert tracker.observe("k4", near, clock) is False
    clock.advance(0.1)
    assert tracker.observe("k4", far, clock) is False  # re-armed and below: dropped
    assert len(tracker) == 2
    assert tracker.observe("k4", near, clock) is True


def test_infinite_reset_after_does_not_pin_a_key() -> None:
    tracker = NearLimitTracker(0.5)
    result = RateLimitResult(allowed=False, key="", limit=2, remaining=0, reset_after=math.inf,
                             retry_after=math.inf, metadata={}, window=1.0)
    clock = FakeClock(0.0)
    assert tracker.observe("k", result, clock) is True
    assert tracker.observe("k", result, clock) is True  # nothing to wait for: re-armed


@pytest.mark.parametrize("ratio", [0, -0.1, 1.01, math.nan, math.inf])
def test_bad_ratio_is_a_value_error(ratio: float, clock: FakeClock) -> None:
    base = FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock)
    with pytest.raises(ValueError, match="near_limit_ratio"):
        ObservableRateLimiter(base, InMemoryMetricsCollector(), near_limit_ratio=ratio)


@pytest.mark.parametrize("ratio", [True, "0.8", None])
def test_ratio_of_wrong_type_is_a_type_error(ratio: Any, clock: FakeClock) -> None:
    base = FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock)
    with pytest.raises(TypeError, match="near_limit_ratio"):
        ObservableRateLimiter(base, InMemoryMetricsCollector(), near_limit_ratio=ratio)


def test_non_callable_callback_is_a_type_error(clock: FakeClock) -> None:
    base = FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock)
    with pytest.raises(TypeError, match="on_near_limit"):
        ObservableRateLimiter(base, InMemoryMetricsCollector(), on_near_limit="email")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_keys"):
        NearLimitTracker(0.8, max_keys=0)


def test_no_listener_no_bookkeeping(clock: FakeClock) -> None:
    base = FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock)
    assert ObservableRateLimiter(base, InMemoryMetricsCollector()).near_limit_tracker is None


def test_prometheus_near_limit_counter(clock: FakeClock) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from ratelimiter.prometheus import PrometheusMetricsCollector

    registry = prometheus_client.CollectorRegistry()
    limiter = ObservableRateLimiter(
        FixedWindowRateLimiter(MemoryBackend(), LIMIT, WINDOW, clock=clock),
        PrometheusMetricsCollector("api", registry=registry),
    )  # no callback: the collector alone turns tracking on

    def near_total() -> Optional[float]:
        value: Optional[float] = registry.get_sample_value(
            "ratelimiter_near_limit_total", {"limiter": "api"})
        return value

    assert near_total() == 0
    for key in ("alice", "bob"):
        send(limiter, key, 12)
    assert near_total() == 2
    send(limiter, "carol", 7)
    assert near_total() == 2  # below the ratio
    clock.advance(20)  # 1000 -> 1020: the next fixed window
    send(limiter, "alice", 9)
    assert near_total() == 3
    text = prometheus_client.generate_latest(registry).decode()
    assert "alice" not in text and "bob" not in text  # keys never become labels
