"""AsyncRateLimiter and async_rate_limit: call paths per backend, exact counts under load."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import pytest
from conftest import DictBackend, FakeClock

from ratelimiter import (
    AsyncRateLimiter,
    FixedWindowRateLimiter,
    InMemoryMetricsCollector,
    MemoryBackend,
    ObservableRateLimiter,
    RateLimitExceeded,
    RateLimitResult,
    SlidingWindowRateLimiter,
    TokenBucketRateLimiter,
    async_rate_limit,
)
from ratelimiter.algorithms.async_base import (
    AsyncRateLimiter as AsyncRateLimiterFromModule,
)
from ratelimiter.algorithms.async_base import (
    async_rate_limit as async_rate_limit_from_module,
)

T = TypeVar("T")


class CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that counts submissions and remembers its worker threads."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.submitted = 0
        self.threads: set[int] = set()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.submitted += 1

        def run() -> T:
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(run)


def test_documented_module_paths() -> None:
    assert AsyncRateLimiter is AsyncRateLimiterFromModule
    assert async_rate_limit is async_rate_limit_from_module


def test_memory_backend_is_called_directly_on_the_loop() -> None:
    executor = CountingExecutor()
    limiter = FixedWindowRateLimiter(MemoryBackend(), limit=5, window=60, clock=FakeClock())
    alimiter = AsyncRateLimiter(limiter, executor=executor)

    async def run() -> list[bool]:
        return [(await alimiter.is_allowed("k")).allowed for _ in range(7)]

    assert asyncio.run(run()) == [True] * 5 + [False] * 2
    assert executor.submitted == 0
    executor.shutdown()


def test_blocking_backend_runs_in_the_executor() -> None:
    executor = CountingExecutor()
    backend = DictBackend()
    limiter = FixedWindowRateLimiter(backend, limit=3, window=60, clock=FakeClock())
    alimiter = AsyncRateLimiter(limiter, executor=executor)

    async def run() -> tuple[list[bool], int]:
        loop_thread = threading.get_ident()
        results = [(await alimiter.is_allowed("k")).allowed for _ in range(5)]
        await alimiter.reset("k")
        results.append((await alimiter.is_allowed("k")).allowed)
        return results, loop_thread

    results, loop_thread = asyncio.run(run())
    assert results == [True, True, True, False, False, True]
    assert executor.submitted == 7  # 6 decisions + 1 reset
    assert backend.threads and loop_thread not in backend.threads
    assert backend.threads <= executor.threads
    executor.shutdown()


def test_default_executor_is_the_loops() -> None:
    backend = DictBackend()
    alimiter = AsyncRateLimiter(FixedWindowRateLimiter(backend, 2, 60, clock=FakeClock()))
    assert alimiter.executor is None

    async def run() -> int:
        await alimiter.is_allowed("k")
        return threading.get_ident()

    loop_thread = asyncio.run(run())
    assert backend.threads and loop_thread not in backend.threads


def test_sqlite_backend_runs_in_executor_and_is_exact(tmp_path: Path) -> None:
    sqlite_mod = pytest.importorskip("ratelimiter.backends.sqlite_backend")
    backend = sqlite_mod.SQLiteBackend(str(tmp_path / "rl.db"))
    executor = CountingExecutor()
    limiter = SlidingWindowRateLimiter(backend, limit=20, window=60, clock=FakeClock())
    alimiter = AsyncRateLimiter(limiter, executor=executor)

    async def run() -> list[RateLimitResult]:
        return await asyncio.gather(*(alimiter.is_allowed("one") for _ in range(200)))

    results = asyncio.run(run())
    assert sum(r.allowed for r in results) == 20
    assert executor.submitted == 200
    executor.shutdown()
    backend.close()


def test_concurrent_tasks_on_memory_admit_exactly_limit() -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), limit=50, window=60, clock=FakeClock())
    alimiter = AsyncRateLimiter(limiter)

    async def run() -> list[RateLimitResult]:
        return await asyncio.gather(*(alimiter.is_allowed("k") for _ in range(200)))

    results = asyncio.run(run())
    assert sum(r.allowed for r in results) == 50


def test_properties_peek_reset_repr() -> None:
    clock = FakeClock()
    limiter = FixedWindowRateLimiter(MemoryBackend(), limit=4, window=30, clock=clock)
    alimiter = AsyncRateLimiter(limiter)
    assert alimiter.limit == 4
    assert alimiter.window == 30.0
    assert alimiter.limiter is limiter
    assert alimiter.backend is limiter.backend
    assert "AsyncRateLimiter" in repr(alimiter)
    assert AsyncRateLimiter(alimiter).limiter is limiter  # no double wrapping

    async def run() -> None:
        r = await alimiter.is_allowed("k", cost=3)
        assert r.remaining == 1
        assert (await alimiter.peek("k")).remaining == 1
        await alimiter.reset("k")
        assert (await alimiter.peek("k")).remaining == 4

    asyncio.run(run())


def test_rejects_non_limiters() -> None:
    with pytest.raises(TypeError):
        AsyncRateLimiter(object())  # type: ignore[arg-type]


class NativeAsyncLimiter:
    """A user's limiter on an async store: backend.is_async and *_async coroutines."""

    class Backend:
        is_async = True

    def __init__(self, limit: int) -> None:
        self.backend = self.Backend()
        self.limit = limit
        self.window = 1.0
        self.counts: dict[str, int] = {}
        self.async_calls = 0

    def is_allowed(self, key: str, cost: int = 1) -> RateLimitResult:
        raise AssertionError("the sync path must not be used for an async backend")

    def reset(self, key: str) -> None:
        raise AssertionError("the sync path must not be used for an async backend")

    async def is_allowed_async(self, key: str, cost: int = 1) -> RateLimitResult:
        self.async_calls += 1
        await asyncio.sleep(0)
        used = self.counts.get(key, 0)
        allowed = used + cost <= self.limit
        if allowed:
            self.counts[key] = used + cost
        return RateLimitResult(
            allowed=allowed, key=key, limit=self.limit,
            remaining=self.limit - self.counts.get(key, 0),
            reset_after=1.0, retry_after=0.0 if allowed else 1.0,
        )

    async def reset_async(self, key: str) -> None:
        self.counts.pop(key, None)


def test_async_backend_awaits_is_allowed_async() -> None:
    native = NativeAsyncLimiter(limit=2)
    alimiter = AsyncRateLimiter(native)

    async def run() -> list[bool]:
        out = [(await alimiter.is_allowed("k")).allowed for _ in range(3)]
        await alimiter.reset("k")
        out.append((await alimiter.is_allowed("k")).allowed)
        return out

    assert asyncio.run(run()) == [True, True, False, True]
    assert native.async_calls == 4


def test_observable_limiter_on_async_backend_records() -> None:
    metrics = InMemoryMetricsCollector()
    alimiter = AsyncRateLimiter(ObservableRateLimiter(NativeAsyncLimiter(limit=1), metrics))

    async def run() -> None:
        await alimiter.is_allowed("k")
        await alimiter.is_allowed("k")

    asyncio.run(run())
    assert metrics.get_stats("k")["allowed"] == 1
    assert metrics.get_stats("k")["dropped"] == 1


# --------------------------------------------------------------------------- async_rate_limit


def test_async_rate_limit_with_async_limiter() -> None:
    clock = FakeClock()
    alimiter = AsyncRateLimiter(TokenBucketRateLimiter(MemoryBackend(), 2, 2, clock=clock))

    @async_rate_limit(alimiter, key_func=lambda uid, **_: f"user:{uid}")
    async def fetch(uid: str) -> str:
        return uid

    async def run() -> None:
        assert [await fetch("a"), await fetch("a")] == ["a", "a"]
        with pytest.raises(RateLimitExceeded) as info:
            await fetch("a")
        assert info.value.key == "user:a"
        assert info.value.limit == 2
        assert info.value.window == 2.0
        assert info.value.retry_after == pytest.approx(1.0)
        assert info.value.result is not None
        assert await fetch("b") == "b"
        clock.now += 1
        assert await fetch("a") == "a"

    asyncio.run(run())
    assert fetch.limiter is alimiter  # type: ignore[attr-defined]


def test_async_rate_limit_with_sync_limiter_and_defaults() -> None:
    limiter = FixedWindowRateLimiter(MemoryBackend(), 1, 60, clock=FakeClock())
    calls = 0

    @async_rate_limit(limiter, raise_on_limit=False)
    async def job() -> str:
        nonlocal calls
        calls += 1
        return "ran"

    async def run() -> list[Optional[str]]:
        return [await job() for _ in range(3)]

    assert asyncio.run(run()) == ["ran", None, None]
    assert calls == 1
    assert limiter.peek(job.__qualname__).remaining == 0


def test_async_rate_limit_key_and_key_func_conflict() -> None:
    limiter = FixedWindowRateLimiter(MemoryBackend(), 1, 60)
    with pytest.raises(ValueError):
        async_rate_limit(limiter, key="a", key_func=lambda: "b")
