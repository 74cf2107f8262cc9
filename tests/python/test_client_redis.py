"""acquire on a real redis-server: limiters in several "hosts" (separate backend objects and
connections) share one budget; waits are still the exact retry_after (fake clock + sleep)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FakeClock
from redis_server import RedisServer
from test_client_waiting import FakeTimer, approx

from ratelimiter import GCRARateLimiter, RedisBackend, TokenBucketRateLimiter
from ratelimiter.client import RateLimitTimeout, _waiting


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as s:
        yield s


@pytest.fixture
def timer(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeTimer:
    fake = FakeTimer(clock)
    monkeypatch.setattr(_waiting, "_TIMER", fake)
    return fake


def host(server: RedisServer, clock: FakeClock, cls: type = GCRARateLimiter) -> Any:
    backend = RedisBackend(url=server.url, use_server_time=False)
    return cls(backend, 2, 1.0, clock=clock)


def test_two_hosts_share_one_budget_and_wait_exactly(server: RedisServer, clock: FakeClock,
                                                      timer: FakeTimer) -> None:
    server.client().flushall()
    a, b = host(server, clock), host(server, clock)
    assert a.acquire("api").allowed and b.acquire("api").allowed
    assert timer.sleeps == []
    assert b.acquire("api").allowed
    assert timer.sleeps == approx([0.5])  # waited for the other host's consumption
    with pytest.raises(RateLimitTimeout):
        a.acquire("api", timeout=0.4)
    assert timer.sleeps == approx([0.5])


async def test_acquire_async_on_redis(server: RedisServer, clock: FakeClock,
                                      timer: FakeTimer) -> None:
    server.client().flushall()
    limiter = host(server, clock, TokenBucketRateLimiter)
    results = [await limiter.acquire_async("api") for _ in range(4)]
    assert all(r.allowed for r in results)
    assert timer.sleeps == approx([0.5, 0.5])


def test_share_pauses_makes_another_host_wait_for_the_servers_retry_after(
        server: RedisServer, clock: FakeClock, timer: FakeTimer) -> None:
    from client_apps import ScriptedApp
    from http_servers import serve_wsgi

    from ratelimiter.client import RateLimitedSession, RetryExhausted, RetryPolicy

    server.client().flushall()
    app = ScriptedApp([(429, {"Retry-After": "30"})])
    a, b = host(server, clock), host(server, clock)  # two hosts, one Redis
    with serve_wsgi(app) as url:
        with RateLimitedSession(a, key="api", retry=RetryPolicy(max_retries=0),
                                share_pauses=True) as session, pytest.raises(RetryExhausted):
            session.get(url)
        with RateLimitedSession(b, key="api", share_pauses=True) as session:
            assert session.get(url).status_code == 200
        assert len(timer.sleeps) == 1 and 29 < timer.sleeps[0] <= 30  # b waited for a's 429
        with RateLimitedSession(host(server, clock), key="api") as session:
            assert session.get(url).status_code == 200  # without share_pauses: no wait
        assert len(timer.sleeps) == 1
    assert app.statuses == [429, 200, 200]
