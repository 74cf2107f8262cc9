"""Aggregate load (AdaptiveRateLimiter(load_capacity=...)) reads its counter as the per-key
sensor does: the core's WindowPair, whose previous-window weight never exceeds 1."""

from __future__ import annotations

import pytest
from conftest import FakeClock

from ratelimiter import AdaptiveRateLimiter, MemoryBackend


def test_a_clock_step_back_never_weighs_the_previous_window_above_one(clock: FakeClock) -> None:
    # adaptive_window 10 s, capacity 1 request/s: one admitted request in the window before
    # reads as load (1 * weight) / 10.
    limiter = AdaptiveRateLimiter(MemoryBackend(), 100, 2.0, adaptive_window=10.0,
                                  load_capacity=1.0, clock=clock)
    clock.now = 1_005.0  # window [1000, 1010)
    assert limiter.is_allowed("a").allowed
    clock.now = 1_012.0  # window [1010, 1020): the admission is in the previous window
    assert limiter.peek("b").metadata["load"] == pytest.approx(0.08)  # weight 0.8
    clock.now = 1_001.0  # the clock steps back 11 s: elapsed counts as 0, weight 1
    assert limiter.peek("b").metadata["load"] == pytest.approx(0.1)


def test_aggregate_load_counts_admissions_of_every_key(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(MemoryBackend(), 100, 2.0, adaptive_window=10.0,
                                  load_capacity=1.0, clock=clock)
    clock.now = 1_000.0
    for key in ("a", "b", "c", "d"):
        assert limiter.is_allowed(key).allowed
    assert limiter.peek("e").metadata["load"] == pytest.approx(0.4)
