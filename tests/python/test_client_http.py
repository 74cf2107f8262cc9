"""HTTP adapters against a real server (werkzeug on 127.0.0.1), with fake time on the client:
every wait (Retry-After, backoff, pause) is checked to its exact value without sleeping."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
import requests
from client_apps import ScriptedApp
from conftest import FakeClock
from http_servers import serve_wsgi
from test_client_waiting import FakeTimer

from ratelimiter import MemoryBackend, TokenBucketRateLimiter
from ratelimiter.client import (
    AsyncRateLimitedTransport,
    CircuitBreaker,
    CircuitOpen,
    RateLimitedSession,
    RateLimitedTransport,
    RateLimitTimeout,
    RetryExhausted,
    RetryPolicy,
    _waiting,
)
from ratelimiter.exceptions import ConfigurationError

TOO_MANY = (429, {"Retry-After": "2"})


@pytest.fixture
def timer(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> FakeTimer:
    fake = FakeTimer(clock)
    monkeypatch.setattr(_waiting, "_TIMER", fake)
    return fake


@pytest.fixture
def limiter(clock: FakeClock) -> TokenBucketRateLimiter:
    return TokenBucketRateLimiter(MemoryBackend(), 100, 1.0, clock=clock)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ScriptedApp, str]]:
    app = ScriptedApp()
    with serve_wsgi(app) as base:  # one server for the module (shutdown takes 0.5 s)
        yield app, base


@pytest.fixture
def app(server: tuple[ScriptedApp, str]) -> ScriptedApp:
    app = server[0]
    app.__init__()  # type: ignore[misc]  # a fresh script and fresh counts per test
    return app


@pytest.fixture
def url(server: tuple[ScriptedApp, str]) -> str:
    return server[1]


def policy(**kwargs: Any) -> RetryPolicy:
    kwargs.setdefault("random", lambda: 0.5)
    return RetryPolicy(**kwargs)


# The same scenarios through each adapter: requests, httpx sync, httpx async.


def get_requests(limiter: Any, url: str, method: str = "GET", **kwargs: Any) -> Any:
    with RateLimitedSession(limiter, **kwargs) as session:
        return session.request(method, url + "/x")


def get_httpx(limiter: Any, url: str, method: str = "GET", **kwargs: Any) -> Any:
    with httpx.Client(transport=RateLimitedTransport(limiter, **kwargs)) as client:
        return client.request(method, url + "/x")


def get_httpx_async(limiter: Any, url: str, method: str = "GET", **kwargs: Any) -> Any:
    import asyncio

    async def run() -> Any:
        transport = AsyncRateLimitedTransport(limiter, **kwargs)
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.request(method, url + "/x")

    return asyncio.run(run())


ADAPTERS = [get_requests, get_httpx, get_httpx_async]
adapters = pytest.mark.parametrize("get", ADAPTERS, ids=["requests", "httpx", "httpx_async"])


@adapters
def test_retry_after_honoured_then_success(get: Any, clock: FakeClock, url: str,
                                           app: ScriptedApp, timer: FakeTimer) -> None:
    limiter = TokenBucketRateLimiter(MemoryBackend(), 100, 1000.0, clock=clock)  # slow refill
    app.replies = [TOO_MANY, TOO_MANY]
    response = get(limiter, url, retry=policy(max_retries=3))
    assert response.status_code == 200 and response.text == "ok"
    assert app.statuses == [429, 429, 200]
    assert timer.sleeps == [2.0, 2.0]  # exactly what the server asked, nothing else
    host = url.split("//")[1]
    assert limiter.peek(host).remaining == 97  # the default key is the host; 3 attempts


@adapters
def test_gives_up_at_max_retries_with_the_last_response(
    get: Any, limiter: Any, url: str, app: ScriptedApp, timer: FakeTimer
) -> None:
    app.replies = [(429, {"Retry-After": "2", "X-Attempt": "1"}),
                   (429, {"Retry-After": "2", "X-Attempt": "2"}), TOO_MANY]
    with pytest.raises(RetryExhausted) as info:
        get(limiter, url, retry=policy(max_retries=1))
    assert (info.value.attempts, info.value.reason) == (2, "max_retries")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["X-Attempt"] == "2"
    assert info.value.response.text == '{"error": "slow down"}'  # read before closing
    assert app.statuses == [429, 429]
    assert timer.sleeps == [2.0]


@adapters
def test_gives_up_when_the_budget_would_be_exceeded(
    get: Any, limiter: Any, url: str, app: ScriptedApp, timer: FakeTimer
) -> None:
    app.replies = [TOO_MANY, TOO_MANY, TOO_MANY]
    with pytest.raises(RetryExhausted) as info:
        get(limiter, url, retry=policy(max_retries=5, budget=3.0))
    assert (info.value.attempts, info.value.reason) == (2, "budget")
    assert timer.sleeps == [2.0]  # 2 s fit in 3 s; the next 2 s would not


@adapters
@pytest.mark.parametrize(("value", "expected"), [
    ("soon", 0.25), ("-5", 0.25), ("1e309", 0.25),  # garbage: full-jitter backoff (0.5·0.5)
    ("604800", 60.0),  # a week away: capped at backoff_max
    ("0", 0.0),
])
def test_bad_or_huge_retry_after(get: Any, value: str, expected: float, limiter: Any, url: str,
                                 app: ScriptedApp, timer: FakeTimer) -> None:
    app.replies = [(503, {"Retry-After": value})]
    assert get(limiter, url, retry=policy(max_retries=1, backoff_max=60)).status_code == 200
    assert timer.sleeps == ([expected] if expected else [])


@adapters
def test_http_date_retry_after(get: Any, limiter: Any, url: str, app: ScriptedApp,
                               timer: FakeTimer) -> None:
    app.replies = [(429, {"Retry-After": lambda: formatdate(time.time() + 30, usegmt=True)})]
    assert get(limiter, url, retry=policy(max_retries=1)).status_code == 200
    assert len(timer.sleeps) == 1 and 28 < timer.sleeps[0] <= 30  # date has 1 s resolution


@adapters
def test_ietf_ratelimit_header_used_without_retry_after(
    get: Any, limiter: Any, url: str, app: ScriptedApp, timer: FakeTimer
) -> None:
    app.replies = [(429, {"RateLimit": '"default";r=0;t=7',
                          "RateLimit-Policy": '"default";q=10;w=60'})]
    assert get(limiter, url, retry=policy(max_retries=1)).status_code == 200
    assert timer.sleeps == [7.0]


@adapters
def test_post_not_retried_unless_told(get: Any, limiter: Any, url: str, app: ScriptedApp,
                                      timer: FakeTimer) -> None:
    app.replies = [TOO_MANY]
    response = get(limiter, url, "POST", retry=policy(max_retries=3))
    assert response.status_code == 429 and app.statuses == [429]  # returned as is
    app.replies = [TOO_MANY]
    assert get(limiter, url, "POST",
               retry=policy(max_retries=3, methods=None)).status_code == 200
    assert app.methods == ["POST", "POST", "POST"]


@adapters
def test_server_retry_after_makes_other_callers_of_the_key_wait(
    get: Any, limiter: Any, url: str, app: ScriptedApp, timer: FakeTimer
) -> None:
    app.replies = [(429, {"Retry-After": "30"})]
    with pytest.raises(RetryExhausted):
        get(limiter, url, key="api", retry=policy(max_retries=0))
    with pytest.raises(RateLimitTimeout):  # another caller of "api": paused 30 s
        limiter.acquire("api", timeout=10)
    assert limiter.acquire("other", timeout=0).allowed
    assert get(limiter, url, key="api").status_code == 200
    assert timer.sleeps == [30.0]


@adapters
def test_breaker_opens_and_fails_fast(get: Any, limiter: Any, url: str, app: ScriptedApp,
                                      timer: FakeTimer, clock: FakeClock) -> None:
    app.replies = [(503, {})]
    app.repeat_last = True
    breaker = CircuitBreaker(failures=2, reset_timeout=10, clock=clock)
    for _ in range(2):
        with pytest.raises(RetryExhausted):
            get(limiter, url, retry=policy(max_retries=0), breaker=breaker)
    with pytest.raises(CircuitOpen):
        get(limiter, url, retry=policy(max_retries=0), breaker=breaker)
    assert len(app.statuses) == 2  # the open circuit never reached the server
    clock.advance(10)
    app.replies, app.repeat_last = [], False
    assert get(limiter, url, breaker=breaker).status_code == 200  # half-open trial succeeds
    assert breaker.state == "closed"


@adapters
def test_key_and_cost_callables(get: Any, limiter: Any, url: str, timer: FakeTimer) -> None:
    seen = []

    def key(request: Any) -> str:
        seen.append(type(request).__name__)
        return "tenant:7"

    assert get(limiter, url, key=key, cost=lambda request: 4).status_code == 200
    assert seen in (["PreparedRequest"], ["Request"])
    assert limiter.peek("tenant:7").remaining == 96


def test_bad_adapter_arguments(limiter: Any) -> None:
    with pytest.raises(TypeError, match="limiter"):
        RateLimitedSession(object())
    with pytest.raises(TypeError, match="key"):
        RateLimitedTransport(limiter, key=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry"):
        AsyncRateLimitedTransport(limiter, retry=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        RateLimitedSession(limiter, max_concurrency=0)


def test_session_is_a_requests_session(limiter: Any) -> None:
    assert isinstance(RateLimitedSession(limiter), requests.Session)
