"""RateLimit as a FastAPI dependency: per route, per router, shared scopes, the 429 through
FastAPI's exception handling, headers on admitted responses, never on the event loop for
blocking stores, docs exempt from the ASGI middleware; the example under uvicorn, and under
two uvicorn workers on a real Redis."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import DictBackend, FakeClock
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from http_servers import run_example
from integration_servers import ROOT, _wait_listening, child_env, free_port
from redis_server import RedisServer

from ratelimiter import ConfigurationError, MemoryBackend
from ratelimiter.integrations.fastapi import (
    RateLimit,
    RateLimitHTTPException,
    rate_limit_exception_handler,
)
from ratelimiter.middleware import AsyncRateLimitMiddleware
from ratelimiter.multi import MultiRateLimiter

BODY = {"error": "rate limit exceeded"}


def statuses(client: TestClient, path: str, n: int, **kwargs: Any) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(n)]


def test_route_dependency_headers_and_shared_429(clock: FakeClock) -> None:
    app = FastAPI()
    app.add_exception_handler(RateLimitHTTPException, rate_limit_exception_handler)
    limit = RateLimit("3/minute", backend=MemoryBackend(), clock=clock,
                      algorithm="sliding_window")

    @app.get("/a", dependencies=[Depends(limit)])
    async def a() -> dict[str, int]:
        return {"a": 1}

    @app.get("/b")
    async def b(result: Any = Depends(limit)) -> dict[str, int]:  # noqa: B008
        return {"remaining": result.remaining}  # the dependency's value is the decision

    with TestClient(app) as client:
        for remaining in (2, 1, 0):
            r = client.get("/a")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit"] == "3"
            assert r.headers["x-ratelimit-remaining"] == str(remaining)
        r = client.get("/a")
        assert (r.status_code, r.json()) == (429, BODY)
        assert r.headers["retry-after"] == "60"
        assert r.headers["content-length"] == "32"
        # Same instance, another route: its own counter.
        r = client.get("/b")
        assert (r.status_code, r.json(), r.headers["x-ratelimit-remaining"]) == \
            (200, {"remaining": 2}, "2")
        clock.advance(60)
        assert client.get("/a").status_code == 200


def test_without_handler_fastapi_default_body_still_429_with_headers(clock: FakeClock) -> None:
    app = FastAPI()

    @app.get("/a", dependencies=[Depends(RateLimit(
        "1/minute", backend=MemoryBackend(), algorithm="sliding_window", clock=clock))])
    async def a() -> str:
        return "ok"

    with TestClient(app) as client:
        assert client.get("/a").status_code == 200
        r = client.get("/a")
        assert (r.status_code, r.json()) == (429, {"detail": "rate limit exceeded"})
        assert r.headers["retry-after"] == "60"
        assert r.headers["x-ratelimit-remaining"] == "0"


def test_app_overrides_the_429_with_its_own_handler(clock: FakeClock) -> None:
    app = FastAPI()

    @app.exception_handler(RateLimitHTTPException)
    async def custom(request: Request, exc: RateLimitHTTPException) -> JSONResponse:
        return JSONResponse({"slow": round(exc.result.retry_after)}, status_code=429,
                            headers=exc.headers)

    @app.get("/a", dependencies=[Depends(RateLimit(
        "1/minute", backend=MemoryBackend(), algorithm="sliding_window", clock=clock))])
    async def a() -> str:
        return "ok"

    with TestClient(app) as client:
        client.get("/a")
        r = client.get("/a")
        assert (r.status_code, r.json(), r.headers["retry-after"]) == (429, {"slow": 60}, "60")


def test_router_per_route_and_scoped_several_limits_atomic(clock: FakeClock) -> None:
    backend = MemoryBackend()
    app = FastAPI()
    app.add_exception_handler(RateLimitHTTPException, rate_limit_exception_handler)
    per_route = APIRouter(prefix="/r", dependencies=[
        Depends(RateLimit("2/minute", backend=backend, clock=clock))])
    shared = APIRouter(prefix="/s", dependencies=[
        Depends(RateLimit("2/minute;3/hour", backend=backend, clock=clock, scope="s",
                          algorithm="sliding_window"))])
    for router in (per_route, shared):
        for name in ("x", "y"):
            router.add_api_route(f"/{name}", lambda: {"ok": True}, methods=["GET"])
        app.include_router(router)

    with TestClient(app) as client:
        assert statuses(client, "/r/x", 3) == [200, 200, 429]
        assert statuses(client, "/r/y", 3) == [200, 200, 429]
        assert statuses(client, "/s/x", 1) + statuses(client, "/s/y", 2) == [200, 200, 429]
        clock.advance(60)
        # The minute refusal consumed nothing of the hour limit: exactly one more.
        assert statuses(client, "/s/x", 2) == [200, 429]


def test_cost_exempt_when_and_async_key_func(clock: FakeClock) -> None:
    async def by_user(request: Request) -> str:
        return request.headers.get("x-user", "anon")

    app = FastAPI()
    limit = RateLimit("10/minute", backend=MemoryBackend(), clock=clock, key_func=by_user,
                      cost=lambda request: 5 if request.method == "POST" else 1,
                      exempt_when=lambda request: request.headers.get("x-admin") == "1")
    app.add_api_route("/c", lambda: "ok", methods=["GET", "POST"],
                      dependencies=[Depends(limit)])
    with TestClient(app) as client:
        u1, u2 = {"x-user": "u1"}, {"x-user": "u2"}
        assert [client.post("/c", headers=u1).status_code for _ in range(3)] == [200, 200, 429]
        assert statuses(client, "/c", 3, headers=u2) == [200] * 3
        assert statuses(client, "/c", 4, headers={**u1, "x-admin": "1"}) == [200] * 4


def test_blocking_store_runs_off_the_event_loop(clock: FakeClock) -> None:
    backend = DictBackend()
    loop_threads: set[int] = set()
    app = FastAPI()

    @app.get("/a", dependencies=[Depends(RateLimit("2/minute", backend=backend, clock=clock))])
    async def a() -> str:
        loop_threads.add(threading.get_ident())
        return "ok"

    with TestClient(app) as client:
        assert statuses(client, "/a", 3) == [200, 200, 429]
    assert backend.threads and loop_threads
    assert not backend.threads & loop_threads


def test_bad_input(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigurationError, match="fortnight"):
        RateLimit("5/fortnight")
    with pytest.raises(ConfigurationError, match="cost"):
        RateLimit("5/minute", cost=0)
    with pytest.raises(ValueError, match="header"):
        RateLimit("5/minute", headers="fancy")  # type: ignore[arg-type]

    from ratelimiter.integrations import _policy

    _policy._logged_views.clear()
    app = FastAPI()
    app.add_api_route("/k", lambda: "ok", dependencies=[Depends(RateLimit(
        "5/minute", backend=MemoryBackend(), clock=clock, key_func=lambda request: 1 / 0))])
    with TestClient(app) as client, caplog.at_level(logging.ERROR):
        responses = [client.get("/k") for _ in range(3)]
    assert [r.status_code for r in responses] == [500] * 3
    assert responses[0].json() == {"detail": "rate limit key could not be computed"}
    assert len([r for r in caplog.records if "ZeroDivisionError" in r.getMessage()]) == 1


def test_docs_exempt_from_asgi_middleware(clock: FakeClock) -> None:
    app = FastAPI()
    app.add_api_route("/x", lambda: "ok")
    limiter = MultiRateLimiter(MemoryBackend(), "1/minute", clock=clock)
    app.add_middleware(AsyncRateLimitMiddleware, limiter=limiter)
    with TestClient(app) as client:
        assert statuses(client, "/x", 2) == [200, 429]
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert statuses(client, path, 3) == [200] * 3
    strict = FastAPI()
    strict.add_middleware(AsyncRateLimitMiddleware,
                          limiter=MultiRateLimiter(MemoryBackend(), "1/minute", clock=clock),
                          docs_paths=())
    with TestClient(strict) as client:
        assert statuses(client, "/openapi.json", 2) == [200, 429]


# ------------------------------------------------------------------ real servers


def _check_example(client: httpx.Client) -> None:
    assert [client.get("/ping").status_code for _ in range(6)] == [200] * 5 + [429]
    r = client.get("/ping")
    assert r.json() == BODY and r.headers["retry-after"] == "60"
    assert r.headers["x-ratelimit-limit"] == "5"
    # The router's scope: /api/search and /api/items share 8/minute.
    assert [client.get("/api/search").status_code for _ in range(5)] == [200] * 5
    assert [client.get("/api/items").status_code for _ in range(4)] == [200] * 3 + [429]
    assert all(client.get("/health").status_code == 200 for _ in range(20))
    assert all(client.get("/openapi.json").status_code == 200 for _ in range(5))


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_under_uvicorn() -> None:
    with run_example("fastapi_app.py") as ex, httpx.Client(base_url=ex.url) as client:
        _check_example(client)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.mark.slow
@pytest.mark.subprocess
def test_example_two_uvicorn_workers_on_redis(redis_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--workers", "2", "--factory", "--port", str(port),
         "--host", "127.0.0.1", "--log-level", "warning", "--no-proxy-headers",
         "fastapi_app:create_app"],
        env=child_env({"RATELIMIT_STORAGE_URI": redis_url}), cwd=str(ROOT / "examples"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(proc, port)
        # A new connection per request, so both workers get requests.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                          headers={"Connection": "close"}) as client:
            _check_example(client)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert os.path.isdir(ROOT / "examples")
