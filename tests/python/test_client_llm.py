"""Tokens and requests with MultiRateLimiter: estimate before the call, adjust by the real
usage after it (fake clock + fake sleep), and several processes sharing one Redis budget."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FakeClock
from http_servers import EXAMPLES
from redis_server import RedisServer
from test_client_waiting import FakeTimer, approx

import ratelimiter
from ratelimiter import MemoryBackend, MultiRateLimiter
from ratelimiter.client import RateLimitTimeout, _waiting


@pytest.fixture
def timer(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeTimer:
    fake = FakeTimer(clock)
    monkeypatch.setattr(_waiting, "_TIMER", fake)
    return fake


@pytest.fixture
def limiter(clock: FakeClock) -> MultiRateLimiter:
    # 1 request/s and 1,500 tokens/s, buckets start full.
    return MultiRateLimiter(MemoryBackend(), {"requests": "60/minute", "tokens": "90000/minute"},
                            algorithm="token_bucket", clock=clock)


def test_waits_for_the_tokens_the_estimate_needs(limiter: MultiRateLimiter,
                                                 timer: FakeTimer) -> None:
    assert limiter.acquire("llm", cost={"requests": 1, "tokens": 60_000}).allowed
    assert timer.sleeps == []
    # 30,000 tokens left; 60,000 more need 30,000 / 1,500 = 20 s (requests refill in 1 s).
    assert limiter.acquire("llm", cost={"requests": 1, "tokens": 60_000}).allowed
    assert timer.sleeps == approx([20.0])


def test_adjust_refunds_an_overestimate_so_the_next_call_goes_at_once(
        limiter: MultiRateLimiter, timer: FakeTimer, clock: FakeClock) -> None:
    limiter.acquire("llm", cost={"requests": 1, "tokens": 60_000})
    limiter.adjust("llm", cost={"tokens": 10_000 - 60_000})  # it really used 10,000
    clock.advance(1.0)  # the request budget refills
    assert limiter.acquire("llm", cost={"requests": 1, "tokens": 60_000}, timeout=0).allowed
    assert timer.sleeps == []


def test_adjust_charges_an_underestimate_so_later_calls_wait_for_it(
        limiter: MultiRateLimiter, timer: FakeTimer) -> None:
    limiter.acquire("llm", cost={"requests": 1, "tokens": 1_000})
    limiter.adjust("llm", cost={"tokens": 80_000})  # it really used 81,000: 9,000 left
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("llm", cost={"requests": 1, "tokens": 12_000}, timeout=1.9)
    # 3,000 tokens short at 1,500/s: exactly 2 s
    assert limiter.acquire("llm", cost={"requests": 1, "tokens": 12_000}).allowed
    assert timer.sleeps == approx([2.0])


def test_a_charge_beyond_the_bucket_is_debt_that_later_calls_wait_out(
        limiter: MultiRateLimiter, timer: FakeTimer) -> None:
    limiter.acquire("llm", cost={"requests": 1, "tokens": 1_000})
    limiter.adjust("llm", cost={"tokens": 95_000})  # used 96,000: 6,000 tokens of debt
    with pytest.raises(RateLimitTimeout):
        limiter.acquire("llm", cost={"requests": 1, "tokens": 1_000}, timeout=4.6)
    # the debt plus this call's 1,000 tokens at 1,500/s
    assert limiter.acquire("llm", cost={"requests": 1, "tokens": 1_000}).allowed
    assert timer.sleeps == approx([7_000 / 1_500])


def test_more_tokens_than_the_budget_fails_at_once(limiter: MultiRateLimiter,
                                                   timer: FakeTimer) -> None:
    with pytest.raises(ratelimiter.RateLimitExceeded) as info:
        limiter.acquire("llm", cost={"requests": 1, "tokens": 90_001})
    assert info.value.retry_after == float("inf") and timer.sleeps == []


async def test_acquire_async_on_multi(limiter: MultiRateLimiter, timer: FakeTimer) -> None:
    await limiter.acquire_async("llm", cost={"requests": 1, "tokens": 60_000})
    await limiter.acquire_async("llm", cost={"requests": 1, "tokens": 60_000})
    assert timer.sleeps == approx([20.0])


def run_example(*args: str) -> str:
    env = dict(os.environ)
    package_root = str(Path(ratelimiter.__file__).parent.parent)
    if package_root in sys.path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root,
                                                          env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(EXAMPLES / "llm_tokens_and_requests.py"),
                           *args], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


SUMMARY = re.compile(r"calls (\d+) in ([\d.]+) s by (\d+) process\(es\); tokens estimated "
                     r"(\d+), used (\d+); the API served at most (\d+) tokens in any 1 s")


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_three_processes_share_one_redis_budget() -> None:
    tokens_per_second = 3000
    with RedisServer() as server:
        out = run_example("--redis", server.url, "--processes", "3", "--calls", "24",
                          "--requests-limit", "20/second",
                          "--tokens-limit", f"{tokens_per_second}/second")
    match = SUMMARY.search(out)
    assert match, out
    calls, elapsed, _, estimated, used, most = (float(g) for g in match.groups())
    assert calls == 24 and used < estimated
    # One shared token bucket (capacity 3,000, 3,000/s): the calls cannot finish before the
    # budget allows, which three separate budgets would (3x faster).
    assert elapsed >= (used - tokens_per_second) / tokens_per_second
    # In any 1 s the API served at most a full bucket plus 1 s of refill.
    assert most <= 2 * tokens_per_second


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_default_run() -> None:
    match = SUMMARY.search(run_example().replace("any 60 s", "any 1 s"))
    assert match and match.group(1) == "12"
