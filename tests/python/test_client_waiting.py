"""acquire / acquire_async: exact sleeps, FIFO order, deadlines, pauses (fake clock + fake sleep).

The fake timer's sleep advances the same fake clock the limiter reads, so every wait is
checked to the exact value the core computed, and nothing sleeps for real (except the one
small real-time test at the end).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any, Optional

import pytest
from conftest import ALL_LIMITERS, FakeClock, make_exact

import ratelimiter
from ratelimiter import (
    AsyncRateLimiter,
    GCRARateLimiter,
    MemoryBackend,
    RateLimitExceeded,
    SQLiteBackend,
    TokenBucketRateLimiter,
    rate_limit,
)
from ratelimiter.client import RateLimitTimeout, Throttle, _waiting
from ratelimiter.exceptions import ConfigurationError


class FakeTimer(_waiting.Timer):
    """Sleeping advances the fake clock at once; ``gate`` (if set) holds the first sleeper
    until the test opens it, so a test can line up waiters behind a sleeping head."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleeps: list[float] = []
        self.lock = threading.Lock()
        self.gate: Optional[threading.Event] = None
        self.sleeping = threading.Event()

    def monotonic(self) -> float:
        return self.clock()

    def sleep(self, seconds: float) -> None:
        gate = self.gate
        self.sleeping.set()
        if gate is not None:
            assert gate.wait(10)
        with self.lock:
            self.sleeps.append(seconds)
            self.clock.advance(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(0)  # let other tasks run (and queue up) while "sleeping"
        self.sleeps.append(seconds)
        self.clock.advance(seconds)


def approx(values: list[float]) -> Any:
    """Equal up to float rounding in the core's arithmetic (1e-9 s)."""
    return pytest.approx(values, abs=1e-9)


@pytest.fixture
def timer(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeTimer:
    fake = FakeTimer(clock)
    monkeypatch.setattr(_waiting, "_TIMER", fake)
    return fake


@pytest.mark.parametrize("cls", ALL_LIMITERS, ids=lambda c: c.__name__)
def test_acquire_sleeps_exactly_the_computed_retry_after(
    cls: type[ratelimiter.BaseAlgorithm], clock: FakeClock, timer: FakeTimer
) -> None:
    limiter = make_exact(cls, MemoryBackend(), 3, 2.0, clock=clock)
    for _ in range(3):
        assert limiter.acquire("k").allowed
    assert timer.sleeps == []  # quota available: no sleep at all
    refused = limiter.is_allowed("k")
    assert not refused.allowed and 0 < refused.retry_after < math.inf
    start = clock.now
    result = limiter.acquire("k")
    assert result.allowed
    assert timer.sleeps == [refused.retry_after]  # one exact sleep, then admitted
    assert clock.now == start + refused.retry_after


def test_acquire_on_sqlite_and_custom_backend(clock: FakeClock, timer: FakeTimer,
                                              tmp_path: Any) -> None:
    from conftest import DictBackend

    for backend in (SQLiteBackend(str(tmp_path / "rl.db")), DictBackend()):
        limiter = TokenBucketRateLimiter(backend, 2, 1.0, clock=clock)
        timer.sleeps.clear()
        results = [limiter.acquire("k") for _ in range(4)]
        assert all(r.allowed for r in results)
        assert timer.sleeps == pytest.approx([0.5, 0.5], abs=1e-9)


def test_timeout_fails_at_once_when_the_wait_ends_after_the_deadline(
    clock: FakeClock, timer: FakeTimer
) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 1, 1.0, clock=clock)
    limiter.acquire("k")
    start = clock.now
    with pytest.raises(RateLimitTimeout) as info:
        limiter.acquire("k", timeout=0.999)
    assert info.value.retry_after == pytest.approx(1.0)
    assert isinstance(info.value, RateLimitExceeded)
    assert timer.sleeps == [] and clock.now == start  # never slept toward a deadline it'd miss
    assert limiter.acquire("k", timeout=1.0).allowed
    assert timer.sleeps == approx([1.0])
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("k", timeout=0)


def test_cost_above_capacity_fails_at_once_even_without_timeout(
    clock: FakeClock, timer: FakeTimer
) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 5, 1.0, clock=clock)
    with pytest.raises(RateLimitExceeded) as info:
        limiter.acquire("k", cost=6)
    assert not isinstance(info.value, RateLimitTimeout)
    assert info.value.retry_after == math.inf
    assert timer.sleeps == []


@pytest.mark.parametrize("timeout", [-1, math.nan, "1", True])
def test_bad_timeout_is_rejected_naming_it(timeout: Any, clock: FakeClock) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 5, 1.0, clock=clock)
    with pytest.raises((ConfigurationError, TypeError), match="timeout"):
        limiter.acquire("k", timeout=timeout)
    assert limiter.peek("k").remaining == 5  # nothing consumed


def _queue_length(limiter: Any, key: str) -> int:
    queue = _waiting._registry(limiter).queues.get(key)
    return 0 if queue is None else len(queue.tickets)


def _line_up(limiter: Any, key: str, timer: FakeTimer, jobs: list[tuple[int, Optional[float]]],
             ) -> tuple[dict[int, Any], list[threading.Thread]]:
    """Start one thread per (cost, timeout), in order, each queued before the next starts;
    the first is the head and sleeps behind the timer's gate. Returns outcomes by index."""
    outcomes: dict[int, Any] = {}
    threads = []
    start = timer.clock.now
    timer.gate = threading.Event()

    def run(i: int, cost: int, timeout: Optional[float]) -> None:
        try:
            result = limiter.acquire(key, cost, timeout)
            outcomes[i] = (round(timer.clock.now - start, 6), result.allowed)
        except RateLimitExceeded as exc:
            outcomes[i] = exc

    for i, (cost, timeout) in enumerate(jobs):
        thread = threading.Thread(target=run, args=(i, cost, timeout))
        threads.append(thread)
        thread.start()
        if i == 0:
            assert timer.sleeping.wait(10)
        deadline = time.monotonic() + 10
        while _queue_length(limiter, key) + len(outcomes) < i + 1:
            assert time.monotonic() < deadline
            time.sleep(0.001)  # test harness only: wait until the thread is queued
    return outcomes, threads


def test_threads_are_admitted_in_arrival_order(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = GCRARateLimiter(MemoryBackend(), 1, 1.0, burst=1, clock=clock)
    limiter.acquire("k")
    outcomes, threads = _line_up(limiter, "k", timer, [(1, None)] * 6)
    assert timer.gate is not None
    timer.gate.set()
    for thread in threads:
        thread.join(10)
    # Thread i (in arrival order) is admitted exactly i + 1 seconds later: strict FIFO.
    assert outcomes == {i: (i + 1, True) for i in range(6)}
    assert timer.sleeps == pytest.approx([1.0] * 6, abs=1e-9)
    assert _waiting._registry(limiter).queues == {}  # idle keys leave no state


def test_a_large_cost_at_the_head_is_not_starved_by_small_ones(
    clock: FakeClock, timer: FakeTimer
) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)  # 1 token/s
    limiter.acquire("k", 10)
    outcomes, threads = _line_up(limiter, "k", timer, [(5, None), (1, None), (1, None)])
    assert timer.gate is not None
    timer.gate.set()
    for thread in threads:
        thread.join(10)
    # The cost-5 head is served at +5; the small ones behind it wait their turn (+6, +7).
    assert outcomes == {0: (5, True), 1: (6, True), 2: (7, True)}


def test_a_queued_waiter_gives_up_at_once_when_the_head_wakes_after_its_deadline(
    clock: FakeClock, timer: FakeTimer
) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    limiter.acquire("k", 10)
    start = clock.now
    outcomes, threads = _line_up(limiter, "k", timer, [(5, None), (1, 2.0), (1, 6.0)])
    threads[1].join(10)
    assert isinstance(outcomes[1], RateLimitTimeout)  # before the head even woke
    assert clock.now == start
    assert timer.gate is not None
    timer.gate.set()
    for thread in threads:
        thread.join(10)
    assert outcomes[0] == (5, True)
    assert outcomes[2] == (6, True)


def test_pause_delays_every_caller_of_the_key(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 10, 1.0, clock=clock)
    _waiting.pause(limiter, "api", 30)
    _waiting.pause(limiter, "api", 5)  # a shorter pause never shortens a longer one
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("api", timeout=29)
    assert limiter.acquire("other").allowed and timer.sleeps == []
    assert limiter.acquire("api").allowed
    assert timer.sleeps == approx([30])
    assert _waiting._registry(limiter).pauses == {}


def test_rate_limit_decorator_waits(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 2, 1.0, clock=clock)

    @rate_limit(limiter, key="f", wait=True)
    def f(x: int) -> int:
        return x

    assert [f(i) for i in range(4)] == [0, 1, 2, 3]
    assert timer.sleeps == approx([0.5, 0.5])

    @rate_limit(limiter, key="g", wait=True, timeout=0.1)
    def g() -> str:
        return "called"

    assert g() == "called" and g() == "called"
    with pytest.raises(RateLimitTimeout):
        g()

    @rate_limit(limiter, key="h", wait=True, timeout=0.1, raise_on_limit=False)
    def h() -> str:
        return "called"

    assert [h(), h(), h()] == ["called", "called", None]
    with pytest.raises(ValueError, match="timeout"):
        rate_limit(limiter, timeout=1.0)


def test_throttle_sync_bounds_concurrency_and_rate(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 100, 1.0, clock=clock)
    throttle = Throttle(limiter, "api", max_concurrency=2)
    in_flight, peak = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    @throttle
    def call() -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        release.wait(0.05)
        with lock:
            in_flight -= 1

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak == 2
    assert limiter.peek("api").remaining == 92
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        Throttle(limiter, "api", max_concurrency=0)


# -- asyncio -------------------------------------------------------------------------


async def test_acquire_async_exact_sleeps_and_fifo(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = GCRARateLimiter(MemoryBackend(), 1, 1.0, burst=1, clock=clock)
    start = clock.now
    admitted: list[tuple[int, float]] = []

    async def task(i: int) -> None:
        await limiter.acquire_async("k")
        admitted.append((i, round(clock.now - start, 6)))

    await asyncio.gather(*(task(i) for i in range(5)))
    assert admitted == [(i, i) for i in range(5)]
    assert timer.sleeps == pytest.approx([1.0] * 4, abs=1e-9)


async def test_acquire_async_timeout_and_capacity(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = AsyncRateLimiter(TokenBucketRateLimiter(MemoryBackend(), 2, 1.0, clock=clock))
    await limiter.acquire("k", 2)
    with pytest.raises(RateLimitTimeout):
        await limiter.acquire_async("k", 1, timeout=0.4)
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.acquire_async("k", 3)
    assert info.value.retry_after == math.inf
    assert timer.sleeps == []
    assert (await limiter.acquire_async("k", 1, timeout=0.5)).allowed
    assert timer.sleeps == approx([0.5])


async def test_queued_task_gives_up_when_the_head_wakes_after_its_deadline(
    clock: FakeClock, timer: FakeTimer
) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    limiter.acquire("k", 10)
    start = clock.now
    head = asyncio.ensure_future(limiter.acquire_async("k", 5))
    await asyncio.sleep(0)
    with pytest.raises(RateLimitTimeout):
        await limiter.acquire_async("k", 1, timeout=2.0)
    assert clock.now == start
    assert (await head).allowed and clock.now == pytest.approx(start + 5)


async def test_throttle_async_and_rate_limit_wait(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 4, 1.0, clock=clock)
    throttle = Throttle(limiter, "api", max_concurrency=3)
    in_flight, peak = 0, 0

    @throttle
    async def call() -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight -= 1

    await asyncio.gather(*(call() for _ in range(6)))
    assert peak == 3
    assert timer.sleeps == approx([0.25, 0.25])

    @rate_limit(limiter, key="w", wait=True)
    async def work() -> int:
        return 7

    assert [await work() for _ in range(5)] == [7] * 5
    assert timer.sleeps[2:] == approx([0.25])


# -- real time, small ----------------------------------------------------------------


def test_real_time_waits_are_exact_sleeps() -> None:
    limiter = GCRARateLimiter(MemoryBackend(), 20, 1.0, burst=1)  # one per 50 ms
    started = time.monotonic()
    results = [limiter.acquire("k") for _ in range(5)]
    elapsed = time.monotonic() - started
    assert all(r.allowed for r in results)
    assert elapsed >= 0.2 - 0.005  # four exact 50 ms waits (lower bound only)


def test_observable_limiter_records_the_decisions_of_acquire(clock: FakeClock,
                                                             timer: FakeTimer) -> None:
    from ratelimiter import InMemoryMetricsCollector, ObservableRateLimiter

    metrics = InMemoryMetricsCollector()
    limiter = ObservableRateLimiter(TokenBucketRateLimiter(MemoryBackend(), 1, 1.0, clock=clock),
                                    metrics)
    assert limiter.acquire("k").allowed and limiter.acquire("k").allowed
    assert timer.sleeps == approx([1.0])
    # admitted, refused (fast path), refused (at the head, before the sleep), admitted
    assert metrics.get_stats("k")["allowed"] == 2
    assert metrics.get_stats("k")["dropped"] == 2


async def test_a_cancelled_head_lets_the_next_task_in(clock: FakeClock, timer: FakeTimer) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 10, 10.0, clock=clock)
    limiter.acquire("k", 10)
    never = asyncio.Event()

    async def stuck_sleep(seconds: float) -> None:
        await never.wait()

    timer.sleep_async = stuck_sleep  # type: ignore[method-assign]
    head = asyncio.ensure_future(limiter.acquire_async("k", 5))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(limiter.acquire_async("k", 1))
    await asyncio.sleep(0)
    head.cancel()
    clock.advance(1.0)
    assert (await asyncio.wait_for(second, 5)).allowed  # now the head, and a token is there
    assert _waiting._registry(limiter).async_queues == {}
