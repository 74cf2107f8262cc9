"""@rate_limit and RateLimitContext: sync and async, exact counts and retry times."""

from __future__ import annotations

import asyncio
import functools
import math

import pytest
from conftest import FakeClock

from ratelimiter import (
    AsyncRateLimiter,
    FixedWindowRateLimiter,
    MemoryBackend,
    RateLimitContext,
    RateLimitExceeded,
    TokenBucketRateLimiter,
    rate_limit,
)
from ratelimiter.decorators import rate_limit as rate_limit_from_module
from ratelimiter.exceptions import RateLimitError


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(fake_clock: FakeClock) -> TokenBucketRateLimiter:
    return TokenBucketRateLimiter(MemoryBackend(), limit=3, window=3, clock=fake_clock)


def test_module_path_is_documented_one() -> None:
    assert rate_limit is rate_limit_from_module


def test_sync_admits_limit_then_raises_with_details(
    limiter: TokenBucketRateLimiter, fake_clock: FakeClock
) -> None:
    calls: list[int] = []

    @rate_limit(limiter)
    def work(x: int) -> int:
        calls.append(x)
        return x * 2

    assert [work(i) for i in range(3)] == [0, 2, 4]
    with pytest.raises(RateLimitExceeded) as info:
        work(99)
    exc = info.value
    assert isinstance(exc, RateLimitError)
    assert calls == [0, 1, 2]
    assert exc.key == work.__qualname__
    assert exc.key.endswith("work")
    assert exc.limit == 3
    assert exc.window == 3.0
    assert exc.retry_after == pytest.approx(1.0)  # one token per second
    assert exc.result is not None
    assert exc.result.allowed is False
    assert exc.result.key == exc.key
    fake_clock.now += 1.0
    assert work(5) == 10


def test_wraps_metadata_and_limiter_attribute(limiter: TokenBucketRateLimiter) -> None:
    @rate_limit(limiter, key="static")
    def documented() -> None:
        """Docstring."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docstring."
    assert documented.limiter is limiter  # type: ignore[attr-defined]


def test_static_key_is_shared(limiter: TokenBucketRateLimiter) -> None:
    @rate_limit(limiter, key="shared")
    def a() -> str:
        return "a"

    @rate_limit(limiter, key="shared")
    def b() -> str:
        return "b"

    assert [a(), b(), a()] == ["a", "b", "a"]
    with pytest.raises(RateLimitExceeded) as info:
        b()
    assert info.value.key == "shared"


def test_key_func_receives_call_arguments(limiter: TokenBucketRateLimiter) -> None:
    @rate_limit(limiter, key_func=lambda user_id, **_: f"user:{user_id}")
    def fetch(user_id: int, verbose: bool = False) -> int:
        return user_id

    for _ in range(3):
        assert fetch(1, verbose=True) == 1
    with pytest.raises(RateLimitExceeded) as info:
        fetch(1)
    assert info.value.key == "user:1"
    assert fetch(2) == 2


def test_cost(limiter: TokenBucketRateLimiter) -> None:
    @rate_limit(limiter, key="k", cost=2)
    def heavy() -> str:
        return "done"

    assert heavy() == "done"
    with pytest.raises(RateLimitExceeded):
        heavy()
    assert limiter.peek("k").remaining == 1


def test_raise_on_limit_false_returns_none_without_calling(
    limiter: TokenBucketRateLimiter,
) -> None:
    calls = 0

    @rate_limit(limiter, key="k", raise_on_limit=False)
    def work() -> str:
        nonlocal calls
        calls += 1
        return "ran"

    assert [work() for _ in range(5)] == ["ran"] * 3 + [None, None]
    assert calls == 3


def test_key_and_key_func_together_is_value_error(limiter: TokenBucketRateLimiter) -> None:
    with pytest.raises(ValueError):
        rate_limit(limiter, key="a", key_func=lambda: "b")


def test_async_function_checked_when_awaited(limiter: TokenBucketRateLimiter) -> None:
    calls: list[int] = []

    @rate_limit(limiter, key="async")
    async def work(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return x

    coroutines = [work(i) for i in range(5)]
    assert limiter.peek("async").remaining == 3  # nothing consumed until awaited

    async def run() -> list[object]:
        return await asyncio.gather(*coroutines, return_exceptions=True)

    results = asyncio.run(run())
    assert results[:3] == [0, 1, 2]
    assert all(isinstance(r, RateLimitExceeded) for r in results[3:])
    assert calls == [0, 1, 2]
    assert asyncio.iscoroutinefunction(work)


def test_async_raise_on_limit_false_awaits_to_none(limiter: TokenBucketRateLimiter) -> None:
    @rate_limit(limiter, key="k", raise_on_limit=False)
    async def work() -> str:
        return "ran"

    async def run() -> list[object]:
        return [await work() for _ in range(4)]

    assert asyncio.run(run()) == ["ran"] * 3 + [None]


def test_async_function_with_async_rate_limiter(limiter: TokenBucketRateLimiter) -> None:
    wrapped = AsyncRateLimiter(limiter)

    @rate_limit(wrapped, key_func=lambda n: f"n:{n}")
    async def work(n: int) -> int:
        return n

    async def run() -> None:
        assert [await work(1) for _ in range(3)] == [1, 1, 1]
        with pytest.raises(RateLimitExceeded) as info:
            await work(1)
        assert info.value.key == "n:1"
        assert info.value.window == 3.0

    asyncio.run(run())
    assert work.limiter is wrapped  # type: ignore[attr-defined]


def test_sync_function_with_async_rate_limiter_uses_wrapped_limiter(
    limiter: TokenBucketRateLimiter,
) -> None:
    @rate_limit(AsyncRateLimiter(limiter), key="k")
    def work() -> int:
        return 1

    assert [work() for _ in range(3)] == [1, 1, 1]
    with pytest.raises(RateLimitExceeded):
        work()


def test_method_and_partial_async_detection(limiter: TokenBucketRateLimiter) -> None:
    class Service:
        @rate_limit(limiter, key_func=lambda self, item: f"item:{item}")
        async def get(self, item: str) -> str:
            return item

    async def run() -> list[str]:
        svc = Service()
        return [await svc.get("x") for _ in range(3)]

    assert asyncio.run(run()) == ["x"] * 3

    async def base(a: int, b: int) -> int:
        return a + b

    partial_limited = rate_limit(limiter, key="p")(functools.partial(base, 1))
    assert asyncio.run(partial_limited(2)) == 3


# --------------------------------------------------------------------------- context manager


def test_context_manager_sync(fake_clock: FakeClock) -> None:
    limiter = FixedWindowRateLimiter(MemoryBackend(), limit=2, window=10, clock=fake_clock)
    with RateLimitContext(limiter, "job") as ctx:
        assert ctx.result is not None
        assert ctx.result.allowed
        assert ctx.result.remaining == 1
    with RateLimitContext(limiter, "job"):
        pass
    ran = False
    ctx2 = RateLimitContext(limiter, "job")
    with pytest.raises(RateLimitExceeded) as info, ctx2:
        ran = True
    assert not ran
    assert info.value.key == "job"
    assert info.value.limit == 2
    assert info.value.window == 10.0
    assert info.value.retry_after == pytest.approx(10.0)  # window [1000, 1010)
    assert ctx2.result is not None and not ctx2.result.allowed
    assert info.value.result is ctx2.result


def test_context_manager_does_not_swallow_exceptions(limiter: TokenBucketRateLimiter) -> None:
    with pytest.raises(KeyError), RateLimitContext(limiter, "k"):
        raise KeyError("x")
    assert limiter.peek("k").remaining == 2  # quota is not given back


def test_context_manager_cost_above_capacity(limiter: TokenBucketRateLimiter) -> None:
    with pytest.raises(RateLimitExceeded) as info, RateLimitContext(limiter, "k", cost=10):
        pass
    assert math.isinf(info.value.retry_after)


def test_async_context_manager(limiter: TokenBucketRateLimiter) -> None:
    async def run() -> int:
        entered = 0
        for _ in range(3):
            async with RateLimitContext(limiter, "a") as ctx:
                assert ctx.result is not None and ctx.result.allowed
                entered += 1
        with pytest.raises(RateLimitExceeded):
            async with RateLimitContext(AsyncRateLimiter(limiter), "a"):
                entered += 100
        return entered

    assert asyncio.run(run()) == 3
