"""usage_path: the caller's own quotas as JSON, through real werkzeug and uvicorn servers,
and near-limit alerts from the middlewares. Every timing is on a FakeClock."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FakeClock
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from flask import Flask
from http_servers import serve_asgi, serve_wsgi

from ratelimiter import (
    AsyncRateLimiter,
    FixedWindowRateLimiter,
    MemoryBackend,
    RateLimitResult,
    SQLiteBackend,
    TokenBucketRateLimiter,
)
from ratelimiter.middleware import AsyncRateLimitMiddleware, RateLimitMiddleware
from ratelimiter.tiers import TieredLimits

KINDS = ["wsgi", "asgi"]


def make_flask() -> Flask:
    app = Flask(__name__)

    @app.route("/", methods=["GET", "POST"])
    def index() -> str:
        return "ok"

    @app.route("/upload", methods=["POST"])
    def upload() -> str:
        return "stored"

    return app


def make_fastapi() -> FastAPI:
    app = FastAPI()

    @app.api_route("/", methods=["GET", "POST"])
    async def index() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.post("/upload")
    async def upload() -> PlainTextResponse:
        return PlainTextResponse("stored")

    return app


def client_key_wsgi(environ: dict[str, Any]) -> str:
    return "client:" + str(environ.get("HTTP_X_CLIENT", "anonymous"))


def client_key_asgi(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"x-client":
            return "client:" + value.decode("latin-1")
    return "client:anonymous"


@contextmanager
def served(kind: str, limiter: Any, **kwargs: Any) -> Iterator[str]:
    """A Flask app behind RateLimitMiddleware or a FastAPI app behind the ASGI one."""
    kwargs.setdefault("usage_path", "/rate_limit")
    if kind == "wsgi":
        kwargs.setdefault("key_func", client_key_wsgi)
        wsgi = RateLimitMiddleware(make_flask(), limiter, **kwargs)
        with serve_wsgi(wsgi) as url:
            yield url
    else:
        kwargs.setdefault("key_func", client_key_asgi)
        asgi = AsyncRateLimitMiddleware(make_fastapi(), limiter, **kwargs)
        with serve_asgi(asgi) as url:
            yield url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def fixed(limit: int, clock: FakeClock, window: float = 60) -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(MemoryBackend(), limit=limit, window=window, clock=clock)


def usage(http: httpx.Client, url: str, client: str) -> dict[str, Any]:
    r = http.get(url + "/rate_limit", headers={"X-Client": client})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"  # one client's data: never cached
    assert r.headers["content-length"] == str(len(r.content))
    resources: dict[str, Any] = r.json()["resources"]
    return resources


@pytest.mark.parametrize("kind", KINDS)
def test_remaining_is_limit_minus_requests_and_usage_is_not_counted(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    with served(kind, fixed(10, clock)) as url:
        for _ in range(3):
            assert http.get(url + "/", headers={"X-Client": "a"}).status_code == 200
        for _ in range(5):  # asking repeatedly changes nothing
            assert usage(http, url, "a") == {
                "default": {
                    "limit": 10, "remaining": 7, "used": 3,
                    # fixed windows start at multiples of 60: at 1000 it ends at 1020
                    "reset": 1020, "reset_after": 20.0, "retry_after": 0.0,
                    "window": 60.0, "algorithm": "fixed_window", "routes": ["*"],
                }
            }
        # ... and the quota is intact: exactly 7 more requests are admitted.
        codes = [http.get(url + "/", headers={"X-Client": "a"}).status_code for _ in range(9)]
        assert codes == [200] * 7 + [429] * 2


@pytest.mark.parametrize("kind", KINDS)
def test_two_clients_see_only_their_own_numbers(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    with served(kind, fixed(10, clock)) as url:
        for _ in range(2):
            http.get(url + "/", headers={"X-Client": "alice"})
        for _ in range(6):
            http.get(url + "/", headers={"X-Client": "bob"})
        assert usage(http, url, "alice")["default"]["remaining"] == 8
        assert usage(http, url, "bob")["default"]["remaining"] == 4
        assert usage(http, url, "carol")["default"]["remaining"] == 10
        # No query parameter chooses a key, and no key is echoed.
        r = http.get(url + "/rate_limit?key=client:bob&client=bob",
                     headers={"X-Client": "alice"})
        assert r.json()["resources"]["default"]["remaining"] == 8
        assert b"alice" not in r.content and b"client:" not in r.content


@pytest.mark.parametrize("kind", KINDS)
def test_usage_path_answers_when_the_client_is_at_its_limit(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    with served(kind, fixed(3, clock)) as url:
        codes = [http.get(url + "/", headers={"X-Client": "a"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        clock.advance(5)  # 1005: 15 s left in the window
        for _ in range(3):
            quota = usage(http, url, "a")["default"]
            assert (quota["remaining"], quota["used"], quota["reset"]) == (0, 3, 1020)
            assert quota["retry_after"] == 15.0 and quota["reset_after"] == 15.0
        assert http.get(url + "/", headers={"X-Client": "a"}).status_code == 429


@pytest.mark.parametrize("kind", KINDS)
def test_head_is_empty_and_other_methods_get_405(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    with served(kind, fixed(3, clock)) as url:
        body = http.get(url + "/rate_limit").content
        head = http.head(url + "/rate_limit")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(body))
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = http.request(method, url + "/rate_limit")
            assert r.status_code == 405
            assert r.json() == {"error": "method not allowed"}
            assert r.headers["allow"] == "GET, HEAD"
        # none of it was counted
        assert usage(http, url, "anonymous")["default"]["remaining"] == 3


@pytest.mark.parametrize("kind", KINDS)
def test_every_per_route_limiter_is_reported_separately(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    default = fixed(10, clock)
    uploads = TokenBucketRateLimiter(MemoryBackend(), limit=4, window=40, clock=clock)
    routes = {"POST /upload": uploads, "PUT /upload": uploads, "POST /": default}
    with served(kind, default, route_limiters=routes) as url:
        http.get(url + "/", headers={"X-Client": "a"})
        for _ in range(3):
            assert http.post(url + "/upload", headers={"X-Client": "a"}).status_code == 200
        report = usage(http, url, "a")
        assert list(report) == ["default", "POST /upload"]
        assert report["default"]["remaining"] == 9
        assert report["default"]["routes"] == ["*", "POST /"]
        upload = report["POST /upload"]
        assert upload["routes"] == ["POST /upload", "PUT /upload"]
        assert (upload["limit"], upload["remaining"], upload["used"]) == (4, 1, 3)
        assert upload["algorithm"] == "token_bucket" and upload["window"] == 40.0
        # 3 tokens missing at 0.1 token/s: full again in 30 s
        assert upload["reset_after"] == 30.0 and upload["reset"] == 1030


@pytest.mark.parametrize("kind", KINDS)
def test_a_route_limiters_callable_reports_the_clients_own_plan(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    tiers = TieredLimits.build(
        MemoryBackend(), {"free": "5/minute", "pro": "50/minute"}, default_plan="free",
        plan_for_key=lambda api_key: "pro" if api_key == "gold" else None,
    )
    hooks: dict[str, Any] = (
        {"key_func": tiers.wsgi_key_func, "route_limiters": tiers.wsgi_limiter}
        if kind == "wsgi" else
        {"key_func": tiers.asgi_key_func, "route_limiters": tiers.asgi_limiter}
    )
    with served(kind, tiers.default_limiter, **hooks) as url:
        http.get(url + "/", headers={"X-API-Key": "gold"})
        pro = http.get(url + "/rate_limit", headers={"X-API-Key": "gold"}).json()
        free = http.get(url + "/rate_limit").json()
        assert (pro["resources"]["default"]["limit"],
                pro["resources"]["default"]["remaining"]) == (50, 49)
        assert (free["resources"]["default"]["limit"],
                free["resources"]["default"]["remaining"]) == (5, 5)


def test_asgi_usage_on_sqlite_through_an_async_rate_limiter(
    tmp_path: Path, clock: FakeClock, http: httpx.Client
) -> None:
    backend = SQLiteBackend(str(tmp_path / "limits.db"))
    limiter = AsyncRateLimiter(FixedWindowRateLimiter(backend, limit=4, window=60, clock=clock))
    with served("asgi", limiter) as url:
        for _ in range(3):
            http.get(url + "/", headers={"X-Client": "a"})
        for _ in range(3):
            quota = usage(http, url, "a")["default"]
            # reset on the wrapped limiter's (fake) clock: the window ends at 1020
            assert (quota["remaining"], quota["reset"]) == (1, 1020)
    backend.close()


def test_usage_path_validation(clock: FakeClock) -> None:
    for middleware in (RateLimitMiddleware, AsyncRateLimitMiddleware):
        for bad in ("rate_limit", "/rate_limit/*", "/rate limit", ""):
            with pytest.raises(ValueError, match="usage_path"):
                middleware(make_flask(), fixed(1, clock), usage_path=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="usage_path"):
            middleware(make_flask(), fixed(1, clock), usage_path=b"/x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="near_limit_ratio"):
            middleware(make_flask(), fixed(1, clock), near_limit_ratio=0)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="on_near_limit"):
            middleware(make_flask(), fixed(1, clock), on_near_limit=1)  # type: ignore[arg-type]


def test_usage_path_off_by_default(clock: FakeClock, http: httpx.Client) -> None:
    with served("wsgi", fixed(3, clock), usage_path=None) as url:
        r = http.get(url + "/rate_limit")
        assert r.status_code == 404  # the app's own answer, and it was counted
        assert r.headers["x-ratelimit-remaining"] == "2"


# ------------------------------------------------------------------ near-limit alerts


@pytest.mark.parametrize("kind", KINDS)
def test_middleware_alerts_once_per_key_per_window_and_per_limiter(
    kind: str, clock: FakeClock, http: httpx.Client
) -> None:
    seen: list[tuple[str, int, int]] = []

    def record(key: str, result: RateLimitResult) -> None:
        seen.append((key, result.limit, result.remaining))

    default = fixed(5, clock)
    uploads = fixed(2, clock)
    with served(kind, default, route_limiters={"POST /upload": uploads},
                on_near_limit=record) as url:
        codes = [http.get(url + "/", headers={"X-Client": "a"}).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        assert seen == [("client:a", 5, 1)]  # 4 of 5 used: once, not on 5, 6, 7
        http.get(url + "/", headers={"X-Client": "b"})
        assert len(seen) == 1
        for _ in range(3):
            http.post(url + "/upload", headers={"X-Client": "a"})
        assert seen[1:] == [("client:a", 2, 0)]  # its own quota, its own alert
        for _ in range(3):
            usage(http, url, "a")  # peeks never alert
        assert len(seen) == 2
        clock.advance(20)  # 1020: the next window
        for _ in range(4):
            http.get(url + "/", headers={"X-Client": "a"})
        assert seen[2:] == [("client:a", 5, 1)]


def test_asgi_async_callback_and_failing_callback(
    clock: FakeClock, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    async def notify(key: str, result: RateLimitResult) -> None:
        await asyncio.sleep(0)
        seen.append(result.remaining)

    with served("asgi", fixed(5, clock), on_near_limit=notify) as url:
        for _ in range(5):
            assert http.get(url + "/").status_code == 200
    assert seen == [1]

    def broken(key: str, result: RateLimitResult) -> None:
        raise RuntimeError("mail server down")

    with caplog.at_level(logging.ERROR, logger="ratelimiter"):
        for kind in KINDS:
            with served(kind, fixed(5, fakeclock_at(clock)), on_near_limit=broken) as url:
                codes = [http.get(url + "/").status_code for _ in range(6)]
                assert codes == [200] * 5 + [429]
    failures = [rec for rec in caplog.records
                if rec.name == "ratelimiter" and rec.levelno == logging.ERROR]
    assert len(failures) == 2  # one per server: 4 of 5 used, once
    assert all("mail server down" in str(rec.exc_info[1]) for rec in failures)


def fakeclock_at(clock: FakeClock) -> FakeClock:
    return FakeClock(clock.now)


def test_usage_json_is_finite_numbers(clock: FakeClock, http: httpx.Client) -> None:
    with served("wsgi", fixed(1, clock)) as url:
        http.get(url + "/")
        raw = http.get(url + "/rate_limit").content
        quota = json.loads(raw)["resources"]["default"]
        assert all(not isinstance(v, float) or math.isfinite(v) for v in quota.values())
        assert b"NaN" not in raw and b"Infinity" not in raw
